"""What diffusers and peft say during a LoRA load goes to Studio's log, and only what the loading thread says."""

from __future__ import annotations

import logging
import threading
import warnings

import pytest

from studio.engine.library_output import library_output_to_studio_log


def _entries(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("While loading a LoRA")]


def _warn_on_another_thread(text: str) -> None:
    other = threading.Thread(target=warnings.warn, args=(text, UserWarning))
    other.start()
    other.join()


def test_a_warning_from_another_thread_during_a_load_is_not_taken(caplog):
    """The window's thread warns while the engine thread loads a LoRA: its warning goes where it always goes, and
    the load's log entry has the load's own warning only."""
    with warnings.catch_warnings(record=True) as shown, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        with library_output_to_studio_log("loading a LoRA"):
            warnings.warn("the load's own warning", UserWarning)
            _warn_on_another_thread("the window's warning")
        warnings.warn("a warning after the load", UserWarning)
    assert [str(w.message) for w in shown] == ["the window's warning", "a warning after the load"]
    (entry,) = _entries(caplog)
    assert entry == "While loading a LoRA:\nUserWarning: the load's own warning"


def test_loads_on_two_threads_ending_out_of_order_leave_warnings_working(caplog):
    """Two loads overlap and the first to start ends first: each keeps its own warnings, and afterwards warnings
    are shown as before (not sent to a list left over from one of the loads)."""
    started, first_done = threading.Event(), threading.Event()

    def second_load() -> None:
        with library_output_to_studio_log("loading a LoRA on the second thread"):
            started.set()
            first_done.wait()
            warnings.warn("the second load's warning", UserWarning)

    with warnings.catch_warnings(record=True) as shown, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        original = warnings.showwarning
        other = threading.Thread(target=second_load)
        with library_output_to_studio_log("loading a LoRA on the first thread"):
            other.start()
            started.wait()
            warnings.warn("the first load's warning", UserWarning)
        first_done.set()
        other.join()
        assert warnings.showwarning is original
        warnings.warn("a warning after both loads", UserWarning)
    assert [str(w.message) for w in shown] == ["a warning after both loads"]
    assert sorted(_entries(caplog)) == [
        "While loading a LoRA on the first thread:\nUserWarning: the first load's warning",
        "While loading a LoRA on the second thread:\nUserWarning: the second load's warning"]


def test_peft_says_its_messages_by_warning_and_they_are_taken(caplog):
    """peft has no logger of its own: what it says (here, a LoRA config's warning) comes as a warning, which the
    entry takes; its warning on every adapter after the first is expected and left out."""
    from peft import LoraConfig

    with warnings.catch_warnings(record=True) as shown, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        with library_output_to_studio_log("loading a LoRA"):
            LoraConfig(init_lora_weights="eva")
            warnings.warn("Already found a `peft_config` attribute in the model.", UserWarning)
    assert shown == []
    (entry,) = _entries(caplog)
    assert entry.startswith("While loading a LoRA:\nUserWarning: `init_lora_weights` is 'eva'")
    assert "peft_config" not in entry


def test_diffusers_log_records_of_the_loading_thread_only_are_taken(caplog):
    """diffusers logs through its own handler: the loading thread's records go to the entry, another thread's are
    logged as ever."""
    from diffusers.utils import logging as diffusers_logging

    diffusers_log = diffusers_logging.get_logger("diffusers.loaders.peft")
    seen: list[str] = []

    class Seen(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    handler = Seen()
    logging.getLogger("diffusers").addHandler(handler)
    verbosity = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_warning()  # Studio's engine start sets errors only; a warning must get through
    try:
        with caplog.at_level(logging.WARNING), library_output_to_studio_log("loading a LoRA"):
            diffusers_log.warning("the load's own record")
            other = threading.Thread(target=diffusers_log.warning, args=("another thread's record",))
            other.start()
            other.join()
    finally:
        logging.getLogger("diffusers").removeHandler(handler)
        diffusers_logging.set_verbosity(verbosity)
    assert seen == ["another thread's record"]
    (entry,) = _entries(caplog)
    assert entry == "While loading a LoRA:\ndiffusers.loaders.peft WARNING: the load's own record"


def _library_warns(text: str, category: type[Warning] = UserWarning) -> None:
    warnings.warn(text, category)  # one line of "library" code, as a LoRA load's warnings come from


def test_the_warnings_taken_are_those_the_process_filters_let_through(caplog):
    """Without "always": a repeated warning from one line is taken once a session, a DeprecationWarning from
    library code not at all, as the terminal would have shown them."""
    with warnings.catch_warnings(record=True) as shown, caplog.at_level(logging.WARNING):
        warnings.resetwarnings()  # Python's own filters (pytest shows every warning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        with library_output_to_studio_log("loading a LoRA"):
            _library_warns("the library's warning")
            _library_warns("the library's warning")
            _library_warns("an old argument", DeprecationWarning)
        with library_output_to_studio_log("loading a LoRA again"):
            _library_warns("the library's warning")
    assert shown == []
    assert _entries(caplog) == ["While loading a LoRA:\nUserWarning: the library's warning"]  # none for "again"

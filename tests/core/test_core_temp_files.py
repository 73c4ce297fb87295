import os
from pathlib import Path

import pytest

from studio.core.temp_files import NAME_MAX, temp_file_beside, temp_stem


@pytest.mark.parametrize("name", ["a" * 246 + ".png", "ü" * 125 + ".png", "short.png"])  # 250, 254, 9 bytes
def test_a_temp_file_is_made_beside_any_legal_name_and_its_own_name_fits(tmp_path: Path, name: str) -> None:
    fd, temp = temp_file_beside(tmp_path / name)
    os.close(fd)
    made = Path(temp)
    assert made.parent == tmp_path and made.is_file()
    assert len(os.fsencode(made.name)) <= NAME_MAX
    assert made.name.startswith("." + name[:4]) and made.name.endswith(".part")
    assert (made.name == f".{name}.{made.name[len(name) + 2:-5]}.part") == (name == "short.png")  # cut only if long


def test_a_cut_stem_never_splits_a_character() -> None:
    stem = temp_stem("ü" * 125 + ".png")
    assert stem == "ü" * 120 and len(os.fsencode(stem)) == 240

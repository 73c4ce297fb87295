from __future__ import annotations


def test_a_style_fills_prompt_into_its_negative_prompt_too():
    from studio.core.settings_sections import PromptStyle

    style = PromptStyle(name="s", prompt="{prompt}, oil painting", negative_prompt="{prompt}, lowres, bad hands")
    assert style.apply("a cat", "blurry") == ("a cat, oil painting", "blurry, lowres, bad hands")
    assert PromptStyle(name="t", negative_prompt="lowres").apply("a cat", "blurry") == ("a cat", "blurry, lowres")


def test_settings_made_in_code_keep_what_a_job_can_take_without_a_word(studio_home):
    from studio.core.control import MAX_GUIDES
    from studio.core.requests import MAX_LORAS
    from studio.core.settings_sections import GenerationDefaults

    made = GenerationDefaults(loras=[{"name": f"lora{i}"} for i in range(MAX_LORAS + 2)],
                              controls=[{"model": "canny", "weight": "heavy"},
                                        *({"model": f"cn{i}"} for i in range(MAX_GUIDES + 1))])
    assert len(made.loras) == MAX_LORAS
    assert [guide["model"] for guide in made.controls] == [f"cn{i}" for i in range(MAX_GUIDES)]

import pytest

from tripwire.activations.hooks import (
    SITES,
    HookPoint,
    HookPointError,
    Site,
    hook_point,
    hook_points,
    transformer_lens_name,
)


def test_negative_layers_normalise_before_anything_is_saved() -> None:
    assert hook_point("blocks.-1.resid_post", 30) == HookPoint(29, "resid_post")
    assert str(hook_point("blocks.-30.resid_pre", 30)) == "blocks.0.resid_pre"


@pytest.mark.parametrize("bad", ["blocks.30.resid_post", "blocks.-31.resid_post"])
def test_layer_out_of_range_gives_the_valid_range(bad: str) -> None:
    with pytest.raises(HookPointError, match=r"0\.\.29"):
        hook_point(bad, 30)


TL_CHOICES = "hook_resid_pre, hook_resid_post, hook_attn_out, hook_mlp_out"


@pytest.mark.parametrize("bad", ["blocks.3.resid_mid", "blocks.3.hook_resid_mid", "blocks.3.hookresid_post"])
def test_unknown_site_lists_both_spellings(bad: str) -> None:
    with pytest.raises(HookPointError, match=f"resid_pre, resid_post, attn_out, mlp_out .*{TL_CHOICES}"):
        hook_point(bad, 30)


def test_malformed_name_lists_the_choices() -> None:
    with pytest.raises(HookPointError, match=f"blocks.<layer>.<site>.*{TL_CHOICES}"):
        hook_point("layer3", 30)


@pytest.mark.parametrize("site", SITES)
def test_transformer_lens_spelling_parses_to_the_canonical_name(site: Site) -> None:
    hp = hook_point(f"blocks.5.hook_{site}", 30)
    assert hp == HookPoint(5, site) and str(hp) == f"blocks.5.{site}"
    assert hook_point(f"blocks.-1.hook_{site}", 30) == HookPoint(29, site)
    assert hook_point(transformer_lens_name(hp), 30) == hp  # the TL name we hook by reads back


def test_both_spellings_of_one_place_are_one_hook_point() -> None:
    got = hook_points(["blocks.2.hook_resid_post", "blocks.2.resid_post", "blocks.-2.hook_resid_post"], 4)
    assert got == [HookPoint(2, "resid_post")]


def test_hook_points_sorted_in_execution_order_without_duplicates() -> None:
    got = hook_points(["blocks.2.resid_post", "blocks.2.resid_pre", "blocks.-2.resid_post", "blocks.2.attn_out"], 4)
    assert [str(p) for p in got] == ["blocks.2.resid_pre", "blocks.2.attn_out", "blocks.2.resid_post"]


def test_transformer_lens_names() -> None:
    assert transformer_lens_name(HookPoint(5, "mlp_out")) == "blocks.5.hook_mlp_out"

"""Hostile YAML: aliases that expand to billions of values ("billion laughs") and oversized files are
refused at once with one short line; error messages quote values cut to about 80 characters."""

from __future__ import annotations

import time

import pytest

from dagrad.config.files import apply_overrides, read_yaml
from dagrad.utils.errors import ConfigError, clip
from dagrad.utils.yaml_bounds import MAX_CONFIG_BYTES, MAX_EXPANDED_NODES, expanded_size, load_bounded


def laughs(levels: int, key: str) -> str:
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]")
    lines.append(f"{key}: [" + ",".join([f"*l{levels - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("key", ["name", "include"])
def test_nine_levels_of_aliases_are_refused_at_once(cli, tmp_path, key):
    (tmp_path / "lol.yaml").write_text(laughs(9, key))
    start = time.monotonic()
    with pytest.raises(ConfigError, match="aliases"):
        read_yaml(tmp_path / "lol.yaml")
    assert time.monotonic() - start < 2  # refused at once (it took gigabytes and minutes)
    result = cli("train", "-c", "lol.yaml", "--out", "o")
    assert result.code == 2
    [line] = result.err.strip().splitlines()
    assert "aliases" in line and f"more than {MAX_EXPANDED_NODES}" in line and len(line) < 300
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("key", ["name", "include"])
def test_five_levels_give_a_short_line(cli, tmp_path, key):
    (tmp_path / "lol.yaml").write_text(laughs(5, key))  # 9**5 = 59049 leaves: under the bound
    result = cli("train", "-c", "lol.yaml", "--out", "o")
    assert result.code == 2
    [line] = result.err.strip().splitlines()
    assert len(line) < 400, line[:500]


def test_an_override_cannot_laugh_either():
    raw = "[&a [1,1,1,1,1,1,1,1,1]," + ",".join(
        f"&{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]" for i in range(8)) + "]"
    with pytest.raises(ConfigError, match="aliases"):
        apply_overrides({}, [f"name={raw}"])


def test_a_config_over_the_size_bound_is_refused(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("name: x\n" + "# filler\n" * (MAX_CONFIG_BYTES // 9 + 1))
    with pytest.raises(ConfigError, match=f"too large for a config \\(at most {MAX_CONFIG_BYTES} bytes\\)"):
        read_yaml(big)


def test_expansion_is_counted_without_expanding():
    import yaml

    node = yaml.SafeLoader(laughs(9, "x")).get_single_node()
    assert expanded_size(node) == MAX_EXPANDED_NODES + 1  # capped, computed in linear time
    assert load_bounded("a: &a [1, 2]\nb: [*a, *a]\n") == {"a": [1, 2], "b": [[1, 2], [1, 2]]}


def test_deep_nesting_is_one_line():
    with pytest.raises(ConfigError, match="nested too deeply|aliases"):
        load_bounded("[" * 3000 + "]" * 3000)


def test_messages_quote_long_values_cut_short(cli, tmp_path):
    long_name = "x" * 100_000
    (tmp_path / "c.yaml").write_text(f"epochs: {long_name}\n")
    result = cli("train", "-c", "c.yaml", "--out", "o")
    assert result.code == 2
    [line] = result.err.strip().splitlines()
    assert "epochs" in line and len(line) < 300
    (tmp_path / "i.yaml").write_text("include: [[" + ", ".join(["abc"] * 5000) + "]]\n")
    [line] = cli("train", "-c", "i.yaml", "--out", "o").err.strip().splitlines()
    assert "include:" in line and len(line) < 300
    assert len(clip(list(range(10_000)))) <= 80 and clip("abc") == "'abc'"

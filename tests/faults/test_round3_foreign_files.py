"""Round 3 (issue 21, item 17): a file that is not a config (`include: /etc/shadow`) is refused without
quoting any of its content."""

from __future__ import annotations

import pytest

from helpers.faultinject import snapshot

SECRET = "s3cr3tHASH"
FOREIGN = [
    ("shadow", f"root:$6$salt${SECRET}:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n", "a top-level key is not a config key"),
    ("id_key", f"-----BEGIN KEY-----\n{SECRET}: [\n", "it is not valid YAML"),
    ("tagged", f"!{SECRET} value\n", "it is not valid YAML"),
    ("notes.txt", f"{SECRET}: {{a: [\n", "it is not valid YAML"),
    ("keys.yaml", f"'{SECRET} x': 1\n", "a top-level key is not a config key"),
]


@pytest.mark.parametrize("name,content,why", FOREIGN, ids=[f[0] for f in FOREIGN])
def test_an_included_foreign_file_is_never_quoted(cli, tmp_path, name, content, why):
    (tmp_path / name).write_text(content)
    (tmp_path / "c.yaml").write_text(f"include: {tmp_path / name}\n")
    before = snapshot(tmp_path)
    line = cli("train", "-c", "c.yaml", "--out", "run").assert_one_line_error(
        f"{tmp_path / name}: not a dagrad config ({why}; its content is not shown)")
    assert SECRET not in line and "$6$" not in line and "daemon" not in line
    assert snapshot(tmp_path) == before


def test_a_config_file_keeps_its_yaml_error(cli, tmp_path):
    (tmp_path / "c.yaml").write_text("epochs: [1\n")
    cli("train", "-c", "c.yaml", "--out", "run").assert_one_line_error("c.yaml: not valid YAML (")

"""Tests of ``beam_seg.space``: template loading, placeholder rendering (text only) and the Space push."""

from __future__ import annotations

import pytest
from hubserver import DEFAULT_USER

from beam_seg.publish import space

VALUES = {"MODEL_REPO_ID": "me/model", "MODEL_VERSION": "v1", "MODEL_REVISION": "abc123", "TITLE": "Pets"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("repo=$MODEL_REPO_ID rev=${MODEL_REVISION}", "repo=me/model rev=abc123"),
        ("$MODEL_VERSION.$MODEL_VERSION", "v1.v1"),
        ("${TITLE}s and $TITLE_SUFFIX", "Petss and $TITLE_SUFFIX"),  # A longer unknown name is not a match.
        ("$HOME $$ $5 ${lower} $", "$HOME $$ $5 ${lower} $"),
        ("no placeholders\r\nCRLF kept\n", "no placeholders\r\nCRLF kept\n"),
        ("émoji 🐱 $TITLE", "émoji 🐱 Pets"),
    ],
)
def test_render_text_replaces_only_known_placeholders(text, expected):
    assert space.render_text(text, VALUES) == expected


def test_binary_files_are_untouched_and_text_files_rendered():
    template = {
        "app.py": b'REPO = "$MODEL_REPO_ID"\n',
        "logo.png": b"\x89PNG\r\n\x1a\n\x00$MODEL_REPO_ID",
        "latin1.txt": "caf\xe9 $MODEL_REPO_ID".encode("latin-1"),  # Not UTF-8: treated as binary.
    }
    rendered = space.render_template(template, VALUES)
    assert rendered["app.py"] == b'REPO = "me/model"\n'
    assert rendered["logo.png"] is template["logo.png"] and rendered["latin1.txt"] is template["latin1.txt"]


def test_is_text():
    assert space.is_text(b"plain\n") and space.is_text("ünïcode".encode())
    assert not space.is_text(b"a\x00b") and not space.is_text(b"\xff\xfe")


def test_leftover_placeholders_are_reported():
    files = space.render_template({"a.md": b"$MODEL_REPO_ID $MODEL_TYPO $OTHER"}, VALUES)
    assert space.leftover_placeholders(files) == {"a.md": ["MODEL_TYPO"]}


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["NOEQUALS"], "KEY=VALUE"),
        (["lower=x"], "UPPER_SNAKE_CASE"),
        (["MODEL_REVISION=x"], "cannot be overridden"),
        (["A=1", "A=2"], "given twice"),
    ],
)
def test_bad_placeholders_are_refused(items, message):
    with pytest.raises(ValueError, match=message):
        space.parse_placeholders(items)


def test_placeholders_keep_equals_signs_in_values():
    assert space.parse_placeholders(["QUERY=a=b", "EMPTY="]) == {"QUERY": "a=b", "EMPTY": ""}


def test_placeholder_values():
    values = space.placeholder_values(
        model_repo="me/m", version="v2", revision="f" * 40, endpoint="http://hub/", extra={"TITLE": "t"}
    )
    assert values == {
        "TITLE": "t",
        "MODEL_REPO_ID": "me/m",
        "MODEL_VERSION": "v2",
        "MODEL_REVISION": "f" * 40,
        "MODEL_REPO_URL": "http://hub/me/m",
        "HUB_URL": "http://hub",
        "LITERT_JS_URL": space.LITERT_JS_URL,  # The pinned CDN copy of the npm package, unless overridden.
    }
    local = space.placeholder_values(
        model_repo="me/m", version="v2", revision="f" * 40, endpoint="http://hub", extra={"LITERT_JS_URL": "/js"}
    )
    assert local["LITERT_JS_URL"] == "/js"
    with pytest.raises(ValueError, match="HUB_URL is set by the publisher"):
        space.parse_placeholders(["HUB_URL=http://elsewhere"])


def test_load_template_skips_caches(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.txt").write_text("x")
    (tmp_path / "README.md").write_text("---\nsdk: gradio\n---\n")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "a.pyc").write_bytes(b"\x00")
    (tmp_path / "stale.pyc").write_bytes(b"\x00")
    assert space.load_template(str(tmp_path)) == {"README.md": b"---\nsdk: gradio\n---\n", "sub/x.txt": b"x"}
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        space.load_template(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no files"):
        space.load_template(str(tmp_path / "empty"))


def test_write_preview_replaces_a_previous_one(tmp_path):
    space.write_preview({"a/b.txt": b"1", "c.bin": b"\x00"}, str(tmp_path / "p"))
    space.write_preview({"c.bin": b"\x01"}, str(tmp_path / "p"))
    assert sorted(p.relative_to(tmp_path / "p").as_posix() for p in (tmp_path / "p").rglob("*") if p.is_file()) == [
        "c.bin"
    ]
    assert (tmp_path / "p" / "c.bin").read_bytes() == b"\x01"


def test_push_space_is_one_exact_commit(hub_api, hub_client_env):
    server = hub_client_env
    repo = f"{DEFAULT_USER}/demo"
    hub_api.create_repo(repo, repo_type="space", space_sdk="gradio")
    files = {"README.md": b"---\nsdk: gradio\n---\n", "app.py": b"print(1)\n", "ex.png": b"\x89PNG\x00\x01"}
    first = space.push_space(hub_api, repo_id=repo, rendered=files, message="deploy")
    assert first.commits_created == 1 and server.commits_created == 1
    assert {p: server.read_file(repo, p, repo_type="space") for p in files} == files
    assert server.list_files(repo, repo_type="space")["ex.png"].lfs
    assert space.push_space(hub_api, repo_id=repo, rendered=files, message="again").commits_created == 0
    files.pop("ex.png")
    space.push_space(hub_api, repo_id=repo, rendered=files, message="smaller")
    assert set(server.list_files(repo, repo_type="space")) == {".gitattributes", "README.md", "app.py"}
    assert server.commits_created == 2

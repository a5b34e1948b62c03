"""Rendering layer: renderer discovery, atomic files, fallbacks that never raise, escaping."""

import os
from pathlib import Path

import graphviz
import pytest

from tinygrad_seq.viz import dot
from tinygrad_seq.viz.dot import (
    RenderError,
    find_renderer,
    html_label,
    pipe_dot,
    plain_label,
    render_dot,
)

SMALL_GRAPH = 'digraph { a -> b; b [label="b"] }'
NASTY = ['say "hi"', "<lambda>", "C:\\temp\\", "line1\nline2", "grad\\N", "W\\nx", "a & b"]

needs_renderer = pytest.mark.skipif(find_renderer() is None, reason="no Graphviz renderer here")
posix_only = pytest.mark.skipif(os.name == "nt", reason="fake renderers are shell scripts")


def fake_renderer(folder: Path, name: str, script: str) -> Path:
    """An executable shell script standing in for a Graphviz renderer."""
    path = folder / name
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def no_renderer(monkeypatch, tmp_path):
    """A machine with no renderer at all: no override, empty PATH, no scripts folder."""
    monkeypatch.delenv(dot.RENDERER_ENV_VAR, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(dot, "_script_dirs", lambda: [])


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@needs_renderer
def test_render_svg_writes_dot_then_svg(tmp_path):
    result = render_dot(SMALL_GRAPH, tmp_path / "out" / "g.svg")
    assert result.ok and result.message is None
    assert (tmp_path / "out" / "g.dot").read_text() == SMALL_GRAPH
    assert result.picture_path == tmp_path / "out" / "g.svg"
    assert "<svg" in result.picture_path.read_text()
    assert leftovers(tmp_path / "out") == []


@needs_renderer
def test_render_png_from_a_path_without_suffix(tmp_path):
    result = render_dot(SMALL_GRAPH, tmp_path / "g", format="png")
    assert result.picture_path == tmp_path / "g.png"
    assert result.picture_path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert (tmp_path / "g.dot").exists()


@posix_only
def test_png_is_size_capped(tmp_path, monkeypatch):
    log = tmp_path / "args"
    renderer = fake_renderer(tmp_path, "dot", f'echo "$@" > {log}; printf PNG')
    monkeypatch.setenv(dot.RENDERER_ENV_VAR, str(renderer))
    render_dot(SMALL_GRAPH, tmp_path / "g.png", format="png")
    assert log.read_text().split() == ["-Tpng", dot.PNG_SIZE_CAP]


def test_bad_format_or_mismatched_suffix_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="format 'pdf' is not supported"):
        render_dot(SMALL_GRAPH, tmp_path / "g", format="pdf")
    with pytest.raises(ValueError, match=r"ends in \.svg but format is 'png'"):
        render_dot(SMALL_GRAPH, tmp_path / "g.svg", format="png")
    assert list(tmp_path.iterdir()) == []


def test_no_renderer_writes_dot_prints_one_line_and_raises_nothing(no_renderer, tmp_path, capsys):
    assert find_renderer() is None
    result = render_dot(SMALL_GRAPH, tmp_path / "g.svg")
    assert not result.ok and result.picture_path is None
    assert (tmp_path / "g.dot").read_text() == SMALL_GRAPH
    assert not (tmp_path / "g.svg").exists()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.strip() == result.message
    assert str(tmp_path / "g.dot") in err and "pip install graphviz-pure" in err


def test_override_naming_nothing_means_no_renderer(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv(dot.RENDERER_ENV_VAR, str(tmp_path / "missing-dot"))
    assert find_renderer() is None
    result = render_dot(SMALL_GRAPH, tmp_path / "g.svg")
    assert not result.ok
    assert "TINYGRAD_SEQ_DOT=" in capsys.readouterr().err
    with pytest.raises(RenderError, match="found no Graphviz renderer"):
        pipe_dot(SMALL_GRAPH)


@posix_only
def test_system_dot_on_path_is_the_last_resort(monkeypatch, tmp_path):
    monkeypatch.delenv(dot.RENDERER_ENV_VAR, raising=False)
    monkeypatch.setattr(dot, "_script_dirs", lambda: [])
    monkeypatch.setenv("PATH", str(tmp_path))
    system_dot = fake_renderer(tmp_path, "dot", "printf '<svg/>'")
    assert find_renderer() == system_dot
    pure = fake_renderer(tmp_path, "graphviz-pure", "printf '<svg/>'")
    assert find_renderer() == pure


@needs_renderer
def test_graphviz_pure_next_to_the_interpreter_is_found_without_path(monkeypatch, tmp_path):
    monkeypatch.delenv(dot.RENDERER_ENV_VAR, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    found = find_renderer()
    if found is None or found.stem != "graphviz-pure":
        pytest.skip("graphviz-pure is not installed with this interpreter")
    assert str(found.parent) in dot._script_dirs()


@posix_only
def test_failing_renderer_is_reported_in_one_line(monkeypatch, tmp_path, capsys):
    renderer = fake_renderer(tmp_path, "dot", "echo 'Error: syntax error in line 1' >&2; exit 3")
    monkeypatch.setenv(dot.RENDERER_ENV_VAR, str(renderer))
    result = render_dot(SMALL_GRAPH, tmp_path / "g.svg")
    assert not result.ok and result.renderer == renderer
    assert "syntax error" in result.stderr
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "dot failed (exit 3: Error: syntax error in line 1)" in err
    assert (tmp_path / "g.dot").exists() and not (tmp_path / "g.svg").exists()


@posix_only
def test_slow_renderer_is_stopped(monkeypatch, tmp_path, capsys):
    renderer = fake_renderer(tmp_path, "dot", "exec sleep 10")
    monkeypatch.setenv(dot.RENDERER_ENV_VAR, str(renderer))
    result = render_dot(SMALL_GRAPH, tmp_path / "g.svg", timeout=0.2)
    assert not result.ok
    assert "took over 0.2 s" in capsys.readouterr().err


@posix_only
def test_renderer_warnings_are_kept_not_printed(monkeypatch, tmp_path, capsys):
    renderer = fake_renderer(tmp_path, "dot", "echo 'Warning: odd font' >&2; printf '<svg/>'")
    monkeypatch.setenv(dot.RENDERER_ENV_VAR, str(renderer))
    result = render_dot(SMALL_GRAPH, tmp_path / "g.svg")
    assert result.ok and result.stderr == "Warning: odd font\n"
    assert capsys.readouterr().err == ""


def test_files_are_replaced_whole(tmp_path):
    (tmp_path / "g.dot").write_text("old")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(dot.RENDERER_ENV_VAR, str(tmp_path / "missing"))
        render_dot(SMALL_GRAPH, tmp_path / "g.svg")
    assert (tmp_path / "g.dot").read_text() == SMALL_GRAPH
    assert leftovers(tmp_path) == []


def test_plain_label_keeps_nasty_text_literal():
    label = plain_label(*NASTY)
    # Backslashes are doubled (so \N, \n and a trailing \ stay text); lines join with DOT's \n.
    assert label == (
        'say "hi"\\n<lambda>\\nC:\\\\temp\\\\\\nline1\nline2\\ngrad\\\\N\\nW\\\\nx\\na & b'
    )


def test_a_label_that_looks_like_html_stays_plain():
    graph = graphviz.Digraph()
    graph.node("n0", plain_label("<lambda>"))
    assert 'n0 [label="<lambda>"]' in graph.source


@needs_renderer
def test_nasty_labels_render_literally(tmp_path):
    graph = graphviz.Digraph()
    for index, text in enumerate(NASTY):
        graph.node(f"n{index}", plain_label(text))
    svg = pipe_dot(graph.source).decode()
    for shown in ["say &quot;hi&quot;", "&lt;lambda&gt;", "C:\\temp\\", ">line1<", ">line2<"]:
        assert shown in svg
    for shown in ["grad\\N", "W\\nx", "a &amp; b"]:
        assert shown in svg


def test_labels_are_capped():
    assert plain_label("x" * 1000) == "x" * (dot.MAX_LABEL_CHARS - 3) + "..."
    assert plain_label("abcdef", max_chars=5) == "ab..."
    assert html_label("<" * 10, max_chars=5) == "&lt;&lt;..."


def test_html_label_escapes_markup_and_keeps_line_breaks():
    assert html_label('a<b> & "c"\nd') == "a&lt;b&gt; &amp; &quot;c&quot;<br/>d"


def test_render_result_paths_for_a_dot_suffix(tmp_path):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(dot.RENDERER_ENV_VAR, str(tmp_path / "missing"))
        result = render_dot(SMALL_GRAPH, tmp_path / "g.dot")
    assert result.dot_path == tmp_path / "g.dot"
    assert str(tmp_path / "g.svg") in result.message

"""Turn DOT text into pictures with whatever Graphviz renderer this machine has.

We run the renderer ourselves instead of calling ``graphviz.Source.render``: that one only
ever looks for a program called ``dot`` on PATH and raises when it is missing, while the
renderer we install with pip (graphviz-pure) is called ``graphviz-pure`` and may sit in a venv
that is not activated. The ``graphviz`` package is still used to *build* DOT text.

Rules this module keeps:

- the ``.dot`` file is always written first, so the source survives any renderer trouble;
- files appear atomically (temp file in the same folder, then ``os.replace``);
- a missing or failing renderer never raises: one line on stderr says what was written and
  how to get pictures, and the returned :class:`RenderResult` carries the details;
- PNGs are size-capped, since a large graph would otherwise ask for gigabytes of pixels;
- every piece of label text goes through :func:`plain_label` or :func:`html_label`.
"""

import html
import os
import shutil
import subprocess
import sys
import sysconfig
import uuid
from dataclasses import dataclass
from pathlib import Path

import graphviz

RENDERER_ENV_VAR = "TINYGRAD_SEQ_DOT"
FORMATS = ("svg", "png")
# 80 x 80 inches at Graphviz's 96 dpi is at most 7680 px a side (about 236 MB of RGBA).
PNG_SIZE_CAP = "-Gsize=80,80"
# Long labels make unreadable nodes, and Debian's dot rejects quoted strings past 16,384 chars.
MAX_LABEL_CHARS = 200
DEFAULT_TIMEOUT = 60.0
INSTALL_HINT = (
    "for pictures run 'pip install graphviz-pure' or install Graphviz's dot "
    f"(or point {RENDERER_ENV_VAR} at one)"
)


@dataclass(frozen=True)
class RenderResult:
    """What :func:`render_dot` did.

    ``picture_path`` is None when no picture was made; ``message`` then says why (it is the
    line that was printed to stderr). ``stderr`` is the renderer's own output, warnings included.
    """

    dot_path: Path
    picture_path: Path | None
    renderer: Path | None
    stderr: str = ""
    message: str | None = None

    @property
    def ok(self) -> bool:
        return self.picture_path is not None


def find_renderer() -> Path | None:
    """Return the Graphviz renderer to run, or None when there is none.

    Order: the ``TINYGRAD_SEQ_DOT`` environment variable (a path or a program name; when it is
    set but names nothing runnable there is no renderer, since the user chose it explicitly),
    then ``graphviz-pure`` next to this interpreter or on PATH, then a system ``dot`` on PATH.
    """
    override = os.environ.get(RENDERER_ENV_VAR)
    if override:
        found = shutil.which(override)
        return Path(found) if found else None
    for folder in _script_dirs():
        found = shutil.which("graphviz-pure", path=folder)
        if found:
            return Path(found)
    for program in ("graphviz-pure", "dot"):
        found = shutil.which(program)
        if found:
            return Path(found)
    return None


def _script_dirs() -> list[str]:
    """Folders where pip puts this interpreter's programs (venv, base install, user scheme)."""
    folders = [
        sysconfig.get_path("scripts"),
        str(Path(sys.executable).parent),
        sysconfig.get_path("scripts", sysconfig.get_preferred_scheme("user")),
    ]
    return list(dict.fromkeys(folder for folder in folders if folder))


class RenderError(RuntimeError):
    """The renderer is missing, failed or timed out; ``str(error)`` says which, in one line."""

    def __init__(self, reason: str, renderer: Path | None = None, stderr: str = "") -> None:
        super().__init__(reason)
        self.renderer = renderer
        self.stderr = stderr


def pipe_dot(source: str, format: str = "svg", timeout: float = DEFAULT_TIMEOUT) -> bytes:
    """Render ``source`` and return the picture's bytes, writing no files.

    Raises ValueError for an unknown format and :class:`RenderError` when there is no
    renderer or it fails.
    """
    return _run_renderer(source, format, timeout)[0]


def _run_renderer(source: str, format: str, timeout: float) -> tuple[bytes, Path, str]:
    """Render ``source``; return the picture, the renderer used and its stderr (warnings)."""
    _check_format(format)
    renderer = find_renderer()
    if renderer is None:
        override = os.environ.get(RENDERER_ENV_VAR)
        why = f": {RENDERER_ENV_VAR}={override!r} names no program" if override else ""
        raise RenderError(f"found no Graphviz renderer{why}; {INSTALL_HINT}")
    command = [str(renderer), f"-T{format}", *([PNG_SIZE_CAP] if format == "png" else [])]
    try:
        done = subprocess.run(
            command, input=source.encode("utf-8"), capture_output=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise RenderError(
            f"{renderer.name} took over {timeout:g} s and was stopped", renderer
        ) from None
    except OSError as error:
        raise RenderError(f"could not run {renderer}: {error}", renderer) from error
    stderr = done.stderr.decode("utf-8", errors="replace")
    if done.returncode != 0 or not done.stdout:
        first_line = next((line.strip() for line in stderr.splitlines() if line.strip()), "")
        detail = f"exit {done.returncode}" + (f": {first_line}" if first_line else "")
        raise RenderError(f"{renderer.name} failed ({detail})", renderer, stderr)
    return done.stdout, renderer, stderr


def render_dot(
    source: str,
    path: str | os.PathLike[str],
    format: str = "svg",
    timeout: float = DEFAULT_TIMEOUT,
) -> RenderResult:
    """Write ``source`` to ``<path>.dot``, then render it to ``<path>.<format>``.

    ``path`` may carry the picture's suffix (``out/graph.svg``) or none (``out/graph``); missing
    folders are created. Raises ValueError for a format other than ``"svg"`` or ``"png"`` or a
    path whose suffix names the other format. Never raises because the renderer is missing,
    fails or times out: it prints one line to stderr and says so in the :class:`RenderResult`.
    """
    _check_format(format)
    base = Path(path)
    suffix = base.suffix.lower()
    if suffix in {".dot", *(f".{name}" for name in FORMATS)}:
        if suffix not in {".dot", f".{format}"}:
            raise ValueError(
                f"render_dot: path {str(path)!r} ends in {base.suffix} but format is {format!r}"
            )
        base = base.with_suffix("")
    dot_path = base.parent / f"{base.name}.dot"
    picture_path = base.parent / f"{base.name}.{format}"
    dot_path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(dot_path, source.encode("utf-8"))
    try:
        picture, renderer, stderr = _run_renderer(source, format, timeout)
    except RenderError as error:
        message = f"tinygrad_seq: wrote {dot_path} but not {picture_path}: {error}"
        print(message, file=sys.stderr)
        return RenderResult(dot_path, None, error.renderer, error.stderr, message)
    _write_atomically(picture_path, picture)
    return RenderResult(dot_path, picture_path, renderer, stderr)


def _check_format(format: str) -> None:
    if format not in FORMATS:
        raise ValueError(f"format {format!r} is not supported; use one of {FORMATS}")


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers never see a half-written file."""
    # Not tempfile.mkstemp: its files are private (0600); this one gets the usual permissions.
    temp_path = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    try:
        with open(temp_path, "xb") as file:
            file.write(data)
        os.replace(temp_path, path)
    except BaseException:
        temp_path.unlink(missing_ok=True)
        raise


def _shorten(text: str, max_chars: int) -> str:
    return text if len(text) <= max_chars else text[: max_chars - 3] + "..."


def plain_label(*lines: str, max_chars: int = MAX_LABEL_CHARS) -> str:
    """A plain DOT label showing each of ``lines`` literally, one below the other.

    Each line is cut to ``max_chars`` and then escaped, so that ``<lambda>``, ``\\N``, quotes
    and trailing backslashes show as typed and an escape is never cut in half.
    """
    escaped = (graphviz.escape(_shorten(str(line), max_chars)) for line in lines)
    # nohtml: a label that happens to look like <...> must not become an HTML-like label.
    return graphviz.nohtml("\\n".join(escaped))


def html_label(text: str, max_chars: int = MAX_LABEL_CHARS) -> str:
    """Make ``text`` safe inside the markup of an HTML-like DOT label (line breaks kept)."""
    return html.escape(_shorten(str(text), max_chars)).replace("\n", "<br/>")

"""A pickle that calls what it imports and breaks only after has run that call: the
unpickler executes each opcode as it reads it.  Whatever the file's name, and whatever
else its bytes read as, such a file is never "not a model", skipped or safe.  The calls
here name a module nobody has (``mymodule.run``); nothing is ever loaded."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from store.inspect import inspect_file, looks_like_model
from store.integrity import check_paths

_CALL = b"cmymodule\nrun\n(tR"
"""``mymodule.run()``: an import the allow-list does not know, called."""


def test_an_unnamed_file_that_calls_then_breaks_is_inspected(tmp_path: Path) -> None:
    data = _CALL + b"\xff this is not an opcode"
    path = tmp_path / "weights"
    path.write_bytes(data)
    found = inspect_file(path)
    assert found.verdict in ("unknown", "corrupt"), found.reasons
    assert "mymodule.run" in found.imports
    assert looks_like_model(data)
    checks = check_paths([str(tmp_path)])
    assert [(Path(c.path).name, c.verdict) for c in checks] == [("weights", found.verdict)]


def test_text_that_names_a_global_without_calling_it_is_still_not_a_model(
    tmp_path: Path,
) -> None:
    data = b"cat\ndog\nbird\nfish\n" * 20
    assert not looks_like_model(data)
    (tmp_path / "vocab").write_bytes(data)
    assert all(c.verdict == "skipped" for c in check_paths([str(tmp_path)]))


def test_a_tar_whose_first_name_calls_then_breaks_is_not_safe(tmp_path: Path) -> None:
    """``pickle.load`` of the tar runs ``mymodule.run()`` from the first member's name,
    then stops at the NUL bytes that pad it; the tar's members hold nothing to vet."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as archive:
        info = tarfile.TarInfo(_CALL.decode())
        info.size = 5
        archive.addfile(info, io.BytesIO(b"hello"))
    path = tmp_path / "model.tar"
    path.write_bytes(buffer.getvalue())
    found = inspect_file(path)
    assert found.verdict == "unknown", found.reasons
    assert any("also a pickle" in r for r in found.reasons)

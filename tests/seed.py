"""What the object-store tests upload: real framework output, a malicious pickle and keys no
local file could have (each store takes a different set of those)."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"

SEED_TREES = {
    "mlflow": FIXTURES / "frameworks" / "mlflow-file",
    "lightning": FIXTURES / "frameworks" / "lightning",
}
"""Key prefix -> local fixture folder uploaded under it, file by file."""

MALICIOUS = FIXTURES / "pickles" / "builtins_eval_global.pkl"


def seed_files(hostile: dict[str, bytes]) -> dict[str, bytes]:
    """Every key a seeded bucket holds, with its bytes."""
    files: dict[str, bytes] = {}
    for prefix, folder in SEED_TREES.items():
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.is_symlink():
                files[f"{prefix}/{path.relative_to(folder).as_posix()}"] = path.read_bytes()
    files["models/evil.pkl"] = MALICIOUS.read_bytes()
    files.update(hostile)
    return files

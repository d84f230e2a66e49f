"""The model zoo: every leaderboard entry with a checkpoint, loadable by name (docs/api.md).

``load_model(name, protocol)`` finds ``<leaderboard>/<protocol>/*.json`` whose ``name`` is ``name``,
checks that the entry's checkpoint path keeps the leaderboard's path rule, that the weights file's
sha256 is the one the entry records, and loads the folder with
:func:`latentbench.checkpoint.load_checkpoint` (safetensors only: nothing is ever unpickled). A
checkpoint that is not there (the fashion-mnist ones are not kept in git) is one error line with a
rebuild command built from the entry's checked names (:func:`~latentbench.leaderboard.validate.rebuild_command`).

Where the entries are read from, first that holds any: the ``leaderboard`` argument, the package
data folder ``latentbench/leaderboard/`` (where a wheel would ship them), and the ``leaderboard/``
folder of the source checkout the package runs from (an editable install), then ``./leaderboard``.
A checkpoint path is relative to the leaderboard folder's parent, as for `leaderboard validate`.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from latentbench.errors import CheckpointError, ConfigError, LatentBenchError


@dataclass
class ZooEntry:
    name: str
    protocol: str
    plugin: str
    #: the entry file
    path: Path
    #: the checkpoint folder the entry names (None: the entry names none)
    checkpoint: Optional[Path]
    sha256: Optional[str]
    data: dict

    @property
    def root(self) -> Path:
        return self.path.parent.parent.resolve().parent

    def status(self) -> str:
        """"ok", "missing" (not here: :meth:`rebuild` says how to make it), "sha256 mismatch" or
        "path refused" (the entry's checkpoint path breaks the path rule)."""
        if self._path_problem():
            return "path refused"
        if not self.present:
            return "missing"
        try:
            self.check()
        except CheckpointError:
            return "sha256 mismatch"
        return "ok"

    def _path_problem(self) -> Optional[str]:
        from latentbench.leaderboard.validate import checkpoint_path_problem

        raw = (self.data.get("checkpoint") or {}).get("path")
        return checkpoint_path_problem(raw, self.root, self.path.parent.parent.name) if isinstance(raw, str) else None

    @property
    def present(self) -> bool:
        from latentbench.checkpoint import WEIGHTS_FILE

        # never look at a path the rule forbids
        return (self._path_problem() is None and self.checkpoint is not None
                and (self.checkpoint / WEIGHTS_FILE).is_file())

    def rebuild(self) -> str:
        from latentbench.leaderboard.validate import rebuild_command

        return rebuild_command(self.data)

    def check(self) -> Path:
        """The checkpoint folder, after the path rule and the sha256 check; a CheckpointError says why not."""
        from latentbench.checkpoint import WEIGHTS_FILE, sha256_file

        where = f"entry '{self.name}' of {self.protocol} ({self.path})"
        raw = self.data["checkpoint"]["path"]  # zoo() keeps only entries with a checkpoint path
        problem = self._path_problem()
        if problem:
            raise CheckpointError(f"{where}: checkpoint.path '{raw[:80]}' {problem}; refusing to read it -- fix the "
                                  f"entry (`latentbench leaderboard validate` names the rule)")
        if not self.present:
            raise CheckpointError(f"{where}: checkpoint {raw} is not here (large checkpoints are not kept in git) -- "
                                  f"rebuild it: {self.rebuild()} (and --save-checkpoint {shlex.quote(raw)})")
        actual = sha256_file(self.checkpoint / WEIGHTS_FILE)
        if actual != self.sha256:
            raise CheckpointError(f"{where}: {raw}/{WEIGHTS_FILE} has sha256 {actual}, the entry records "
                                  f"{self.sha256}; the weights were changed or replaced -- restore the file the "
                                  f"entry was made with or rebuild it: {self.rebuild()}")
        return self.checkpoint


def leaderboard_dir(leaderboard: Optional[str | Path] = None) -> Path:
    """The folder of ``<protocol>/<entry>.json`` files to read (the module docstring says which)."""
    import latentbench

    if leaderboard is not None:
        d = Path(leaderboard).expanduser()
        if not d.is_dir():
            raise ConfigError("leaderboard", f"folder {d} does not exist",
                              "pass the folder holding <protocol>/<entry>.json files (the repository's leaderboard/)")
        return d
    package = Path(latentbench.__file__).resolve().parent
    candidates = [package / "leaderboard", package.parent / "leaderboard", Path.cwd() / "leaderboard"]
    for d in candidates:
        if d.is_dir() and any(d.glob("*/*.json")):
            return d
    raise LatentBenchError(f"no leaderboard entries found (looked in {', '.join(str(c) for c in candidates)}) -- pass "
                           f"leaderboard='path/to/leaderboard' (a clone of the repository's leaderboard/ folder)")


def zoo(protocol: Optional[str] = None, leaderboard: Optional[str | Path] = None) -> list[ZooEntry]:
    """The entries with a checkpoint (of ``protocol``, or of every protocol), by protocol and name."""
    from latentbench.leaderboard.validate import entry_files

    d = leaderboard_dir(leaderboard)
    out = []
    for p in entry_files(d):
        if protocol is not None and p.parent.name != protocol:
            continue
        try:
            data = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            continue  # `leaderboard validate` reports it
        ck = data.get("checkpoint") if isinstance(data, dict) else None
        if not isinstance(ck, dict) or not isinstance(ck.get("path"), str):
            continue
        proto = (data.get("protocol") or {}).get("name")
        out.append(ZooEntry(str(data.get("name", p.stem)), str(proto), str((data.get("model") or {}).get("plugin")), p,
                            d.resolve().parent / ck["path"], ck.get("sha256"), data))
    return sorted(out, key=lambda e: (e.protocol, e.name))


def find_entry(name: str, protocol: str, leaderboard: Optional[str | Path] = None) -> ZooEntry:
    entries = zoo(None, leaderboard)
    for e in entries:
        if e.name == name and e.protocol == protocol:
            return e
    names = [e.name for e in entries if e.protocol == protocol]
    if not names:
        protocols = sorted({e.protocol for e in entries})
        raise ConfigError("protocol", f"no zoo entries under protocol '{protocol}'",
                          f"use one of: {', '.join(protocols) or '(none)'} (`latentbench zoo` lists them)")
    from latentbench.errors import suggest

    close = suggest(name, names)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ConfigError("name", f"no entry '{name}' under {protocol}{hint}", f"use one of: {', '.join(names)}")


def load_model(name: str, protocol: str, *, leaderboard: Optional[str | Path] = None, device: str = "cpu",
               registry: Any = None):
    """The model of leaderboard entry ``name`` under ``protocol``, in eval mode on ``device``, after
    checking its checkpoint's path and sha256 (the module docstring)."""
    from latentbench.checkpoint import load_checkpoint, read_checkpoint_config

    entry = find_entry(name, protocol, leaderboard)
    folder = entry.check()
    recorded = read_checkpoint_config(folder)["model"]
    if recorded != entry.plugin:
        raise CheckpointError(f"entry '{name}' of {protocol} names model '{entry.plugin}' but its checkpoint's "
                              f"config.json names '{recorded}' -- fix the entry or rebuild the checkpoint: "
                              f"{entry.rebuild()}")
    return load_checkpoint(folder, registry, device)

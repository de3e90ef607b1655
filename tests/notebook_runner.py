"""Execute a notebook the way the notebook tests do: a fresh python3 kernel, one thread,
the working folder given, environment variables given to the kernel only."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import nbformat


def execute(
    path: Path,
    cwd: Path,
    env: Mapping[str, str | None] | None = None,
    *,
    extra_cells: tuple[str, ...] = (),
    timeout: int = 900,
) -> nbformat.NotebookNode:
    """Run ``path`` top to bottom in ``cwd`` and return the executed notebook.

    ``env`` sets (or, with None, removes) variables in the kernel's environment; this
    process's environment is left alone. ``extra_cells`` are appended and run last.
    Raises nbclient's CellExecutionError, naming the cell, on the first error.
    """
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    nb.cells.extend(nbformat.v4.new_code_cell(code) for code in extra_cells)
    kernel_env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for key, value in (env or {}).items():
        if value is None:
            kernel_env.pop(key, None)
        else:
            kernel_env[key] = value
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    )
    client.execute(env=kernel_env)
    return nb


def printed(nb: nbformat.NotebookNode) -> str:
    """Everything the notebook's code cells printed, in order."""
    return "\n".join(
        out.get("text", "") for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs
    )

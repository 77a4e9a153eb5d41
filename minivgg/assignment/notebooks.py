"""The notebooks of a student's copy: each part's exercise and its check, where a notebook first
needs the part.

In the copy a notebook runs up to the first part the student has not written and stops there,
at that part's check, with the grader's hint, instead of with a NotImplementedError deep in some
later cell:

- right before the first cell that uses parts of *earlier* notebooks (``REQUIRES``), a check
  cell for them;
- right before the first cell that uses one of the notebook's own parts (``EXERCISES``: the id of
  that cell), after the text that explains it, a markdown cell saying what to write where, then a
  check cell. A check cell prints the self-check of its parts and raises
  ``selfcheck.PartNotDone`` (stopping "Run All") unless they all pass.

Only assigned parts get cells. tests/test_notebooks.py records, while it runs the reference
notebooks, the first cell that calls each part's code, or code that runs it in a copy
(``make.DELEGATES``), and :func:`unchecked_uses` names any use a copy's notebook would reach
before checking the part.
"""

import hashlib
import re
import textwrap

from .parts import PARTS

# part -> (notebook number, id of the first cell that uses it); the parts in the course's order
EXERCISES = {"conv_direct": ("01", "c03"), "im2col": ("01", "c07"), "im2col_numpy": ("01", "c17"),
             "conv_layer": ("01", "c19"),
             "linear": ("02", "c11"), "relu": ("02", "c15"), "maxpool": ("02", "c17"),
             "lrn": ("02", "c17"), "dropout": ("02", "c17"), "softmax_ce": ("02", "c17"),
             "receptive_field": ("03", "c03"), "sgd_momentum": ("03", "c38b9c20")}
# what training a VGG calls: its layers on the default backend, the loss, SGD
TRAINING = ("im2col", "conv_layer", "linear", "relu", "maxpool", "dropout", "softmax_ce",
            "sgd_momentum")
# notebook number -> {id of a cell: the parts of earlier notebooks it is the first to use}
REQUIRES = {"02": {"c9": ("im2col", "conv_layer"), "c17": ("im2col_numpy",)},
            "03": {"c05": ("im2col", "conv_layer"), "c15": ("linear",), "c17": ("relu", "maxpool"),
                   "c38b9c20": ("dropout", "softmax_ce")},
            "04": {"c09": ("receptive_field",), "c17": ("lrn",), "f93c21d7": TRAINING},
            "05": {"c07": ("receptive_field",), "c11": TRAINING},
            "06": {"c03": TRAINING, "c16b": ("receptive_field",)},
            "07": {"c18": TRAINING}, "08": {"f27ccca4": TRAINING},
            "09": {"c9": ("conv_direct",), "c11": ("im2col", "conv_layer")}}
KEY = "minivgg_checks"          # a check cell's metadata: the parts it checks
CHECK = """# Checks {what} as the grader does, on the public cases (README.md: `python -m minivgg check`).
from minivgg.assignment.selfcheck import notebook_check

notebook_check({parts})"""
RELOAD = ("# edits to the package's files take effect in this notebook without a restart\n"
          "%load_ext autoreload\n%autoreload 2\n\n")


def _cell(kind, source, parts=()):
    cell = {"cell_type": kind, "id": f"{kind}-{'-'.join(parts) or 'none'}", "metadata": {},
            "source": source.splitlines(keepends=True)}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
        cell["metadata"][KEY] = list(parts)
    return cell


def _check_cell(parts, what):
    return _cell("code", CHECK.format(what=what, parts=", ".join(map(repr, parts))), parts)


def _exercise(part):
    functions = "\n".join(f"- `{name}`: {task}" for name, task in part.functions.items())
    return _cell("markdown", f"""### Your part: `{part.name}` ({part.points} points)

In `minivgg/{part.file}`, write

{functions}

A banner in each function marks the place; the docstring above it gives the shapes. The next cell
checks your code the way the grader does and prints its verdict, or a hint at what is wrong; the
cells after it use your code, so it stops the notebook until the part passes.""", [part.name])


def add_student_cells(notebook, number, assigned):
    """Insert the exercise and check cells of notebook ``number`` (a dict, changed in place)."""
    cells = notebook["cells"]
    ids = [cell.get("id") for cell in cells]
    anchors = _anchors(number)
    # a cell the tables name that is gone (the notebook changed): check right after the imports,
    # early but safe; tests/test_assignment_notebooks.py reports the stale name
    after_imports = next(i for i, cell in enumerate(cells) if cell["cell_type"] == "code") + 1
    earlier, own = {}, {}                       # index of a cell -> parts to check before it
    for name in EXERCISES:                      # in the course's order
        index = _anchor(name, anchors, assigned, ids, after_imports) if name in assigned else None
        if index is not None:
            mine = EXERCISES[name][0] == number
            (own if mine else earlier).setdefault(index, []).append(name)
    inserts = {index: [_check_cell(parts, "the parts of earlier notebooks the next cells use")]
               for index, parts in earlier.items()}
    for index, parts in own.items():
        for name in parts:
            part = next(p for p in PARTS if p.name == name)
            inserts.setdefault(index, []).extend([_exercise(part),
                                                  _check_cell([name], f"your part {name}")])
    notebook["cells"] = [new for i, cell in enumerate(cells) for new in [*inserts.get(i, ()), cell]]
    first_check = next((cell for cell in notebook["cells"] if KEY in cell["metadata"]), None)
    if first_check:                                 # load autoreload once, in the first check
        first_check["source"] = RELOAD.splitlines(keepends=True) + first_check["source"]
    return notebook


def _anchors(number):
    """{part: id of the first cell of notebook ``number`` that uses it}: its own parts and those
    of earlier notebooks it uses."""
    anchors = {name: cell for name, (where, cell) in EXERCISES.items() if where == number}
    anchors.update({name: cell for cell, names in REQUIRES.get(number, {}).items()
                    for name in names})
    return anchors


def _anchor(name, anchors, assigned, ids, missing):
    """Index of the cell that part ``name``'s check goes before: its first use, or that of a part
    left solved whose functions then run this part's code (make.DELEGATES: with only
    im2col_numpy assigned, naive.im2col calls vectorized.im2col); None if the notebook uses
    neither; ``missing`` for a cell that is not in the notebook."""
    from .make import DELEGATES
    stand_ins = {keep for parts, keep, _ in DELEGATES.values()
                 if keep and keep not in assigned and name in parts}
    cells = [anchors[part] for part in [name, *sorted(stand_ins)] if part in anchors]
    return min(ids.index(cell) if cell in ids else missing for cell in cells) if cells else None


# ------------------------------------------------------------------------------------------------
# which cells use which parts (the test of the tables above)
# ------------------------------------------------------------------------------------------------

def traced_functions():
    """{(file, qualified name): part or None}: every function a part's code runs in, in a copy:
    the parts' own functions and their counterparts on other backends (make.DELEGATES)."""
    from .make import DELEGATES
    functions = {(part.file, name): part.name for part in PARTS for name in part.functions}
    functions.update({key: None for key in DELEGATES if key not in functions})
    return functions


def source_key(source):
    """What identifies a cell to the tracer: a hash of its source (the kernel is not told ids)."""
    return hashlib.sha1(source.encode()).hexdigest()[:16]


def tracer_source():
    """Code for a notebook's first cell that records, in ``_part_uses``, the first cell that
    calls each traced function (``"file:name" -> source_key`` of the cell: tests/test_notebooks.py
    turns it into the cell's id); print(json.dumps(...)) in the last cell gives the record."""
    rows = sorted(traced_functions())
    return textwrap.dedent(f"""\
        import functools as _functools, importlib as _importlib, IPython as _IPython
        from minivgg.assignment.notebooks import source_key as _source_key
        _part_uses, _cell = {{}}, [None]
        _IPython.get_ipython().events.register(
            "pre_run_cell", lambda info: _cell.__setitem__(0, _source_key(info.raw_cell)))
        def _trace(file, qualname):
            owner = _importlib.import_module("minivgg." + file[:-3].replace("/", "."))
            *path, name = qualname.split(".")
            for attribute in path:
                owner = getattr(owner, attribute)
            original = owner.__dict__[name]
            @_functools.wraps(original)
            def traced(*args, **kwargs):
                _part_uses.setdefault(file + ":" + qualname, _cell[0])
                return original(*args, **kwargs)
            setattr(owner, name, traced)
        for _row in {rows!r}:
            _trace(*_row)
        """)


def _parts_run_by(file, function, assigned):
    """The assigned parts whose code a call of ``file:function`` runs in a copy (one, or none)."""
    from .make import DELEGATES
    own = traced_functions().get((file, function))
    if own in assigned:
        return {own}
    row = DELEGATES.get((file, function))
    if row is None or not set(row[0]) & set(assigned) or row[1] in assigned:
        return set()                                 # solved in the copy, or not delegated
    call = re.search(r"\b(naive|vectorized)\.(\w+)\(", row[2])
    if call:                                         # a kernel calling another backend's
        return _parts_run_by(f"kernels/{call[1]}.py", call[2], assigned)
    return set(row[0]) & set(assigned)


def unchecked_uses(notebook, uses, assigned):
    """Problems, as sentences: a cell of the student's ``notebook`` (a dict) that calls a part's
    code (``uses``: "file:function" -> id of the reference notebook's first cell calling it)
    before a check cell has checked that part."""
    ids = {cell.get("id") for cell in notebook["cells"]}
    problems = [f"{key} was first called in cell {cell_id!r}, which is not in the notebook"
                for key, cell_id in uses.items() if cell_id not in ids]
    first_use = {}
    for key, cell_id in uses.items():
        for part in _parts_run_by(*key.split(":"), assigned):
            first_use.setdefault(cell_id, []).append((part, key))
    checked = set()
    for cell in notebook["cells"]:
        checked.update(cell["metadata"].get(KEY, ()))
        problems += [f"cell {cell.get('id')} calls {key} (part {part}) before any cell checks "
                     f"{part}" for part, key in first_use.get(cell.get("id"), ())
                     if part not in checked]
    return problems


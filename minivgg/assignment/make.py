"""``minivgg assignment make OUT``: the student's copy, with the marked solutions taken out.

The reference code carries nbgrader's solution markers, each on a line of its own and indented
like the code it encloses. In the student's copy a block of an assigned part becomes

    a banner comment: which part, how many points, what to implement
    <the names the code after the block reads, set to None>
    raise NotImplementedError("<part>: ...")

and a block of a part left out of the assignment (``--only``) just loses its two marker lines.
Every file is checked before anything is written: markers must pair up at the same indentation
and never nest, each block must sit in a function of the parts table, and the result must parse.
Imports and local names that only the removed code read get a ``# noqa`` (F401, F841) saying
the student's code will need them, so the copy lints cleanly.

Notebooks (``notebooks/*.ipynb``) get the same treatment cell by cell, lose their outputs, and get
each assigned part's exercise and check cells (notebooks.py).
A block in a notebook belongs to the part whose function it sits in, or else to an exercise named
after the notebook (which ``--only`` can name too, and which ``minivgg grade`` does not grade).
"""

import argparse
import ast
import json
import re
import shutil
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

from .notebooks import EXERCISES, add_student_cells
from .parts import PARTS, Part, completed, given_away
from .runner import PRELOAD

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
PACKAGE = "minivgg"
REFERENCE_ROOT = Path(__file__).resolve().parents[2]     # the directory that holds minivgg/
MANIFEST = "assignment.json"                             # the parts assigned, for the grader
PROJECT_FILES = ("pyproject.toml", "setup.cfg", "README.md")   # so the copy installs, lints alike
SKIPPED = ("__pycache__", ".ipynb_checkpoints")
COMPILED = (".pyc", ".so", ".nbi", ".nbc", ".pyd")       # caches and builds are never copied
NOQA = "  # noqa: {} (your code will need it)"      # F401 unused import, F841 unused local
BANNER_WIDTH = 96
EXERCISE = "complete this cell; the notebook's later cells check it."


class MarkerError(ValueError):
    """A marker problem or a student version that does not parse, as ``file:line: what``."""


@dataclass
class Block:
    begin: int          # 1-based line numbers of the two marker lines
    end: int
    indent: str
    part: Part = None
    scope: ast.AST = None
    function: str = ""


def find_blocks(lines, where):
    """The marked blocks of a file's lines; a MarkerError for an unpaired, nested or misindented marker."""
    blocks, open_block = [], None
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if text not in (BEGIN, END):
            continue
        indent = line[:len(line) - len(line.lstrip())]
        if text == BEGIN:
            if open_block:
                raise MarkerError(f"{where}:{number}: {BEGIN} inside the block opened at line "
                                  f"{open_block.begin} (blocks cannot nest)")
            open_block = Block(number, None, indent)
        elif open_block is None:
            raise MarkerError(f"{where}:{number}: {END} without a {BEGIN} before it")
        elif indent != open_block.indent:
            raise MarkerError(f"{where}:{number}: {END} is indented differently from the {BEGIN} "
                              f"at line {open_block.begin}")
        else:
            open_block.end = number
            blocks.append(open_block)
            open_block = None
    if open_block:
        raise MarkerError(f"{where}:{open_block.begin}: {BEGIN} is never closed by {END}")
    return blocks


def cell_python(source):
    """A notebook cell's source as Python: as it is if it parses, else with IPython's %magic and
    !shell lines blanked (only then: a line starting with % can be Python, the continuation of
    ``"..." % (...)``)."""
    try:
        ast.parse(source)
        return source
    except SyntaxError:
        return "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                         for line in source.split("\n"))


def _parse(source, where, cell=False):
    """ast of a file, or of a notebook cell (``cell_python``)."""
    if cell:
        source = cell_python(source)
    try:
        return ast.parse(source, filename=where)
    except SyntaxError as error:
        raise MarkerError(f"{where}:{error.lineno}: does not parse: {error.msg}") from None


def _functions(node, prefix=""):
    """(qualified name, node) of every function under ``node``: ``f``, ``Class.method``, ``f.inner``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if not isinstance(child, ast.ClassDef):
                yield prefix + child.name, child
            yield from _functions(child, f"{prefix}{child.name}.")
        else:
            yield from _functions(child, prefix)


def _enclosing_function(tree, line):
    """(qualified name, node) of the innermost function around ``line``; ("", tree) at top level."""
    around = [(node.lineno, name, node) for name, node in _functions(tree)
              if node.lineno <= line <= node.end_lineno]
    return max(around, key=lambda t: t[0])[1:] if around else ("", tree)


def _names_to_initialise(block):
    """Names the block binds and later code in its function reads, that nothing else binds.

    Without a value these would be undefined once the block is gone (a lint error, though the
    raise stops execution first), so the student's copy sets them to None before the raise.
    """
    bound_inside, bound_elsewhere, read_after = {}, set(), set()
    if isinstance(block.scope, (ast.FunctionDef, ast.AsyncFunctionDef)):
        arguments = block.scope.args
        bound_elsewhere.update(a.arg for a in arguments.posonlyargs + arguments.args
                               + arguments.kwonlyargs + [arguments.vararg, arguments.kwarg] if a)
    for node in ast.walk(block.scope):
        if not isinstance(node, ast.Name):
            continue
        inside = block.begin < node.lineno < block.end
        if isinstance(node.ctx, ast.Store):
            if inside:
                bound_inside.setdefault(node.id, (node.lineno, node.col_offset))
            else:
                bound_elsewhere.add(node.id)
        elif node.lineno > block.end:
            read_after.add(node.id)
    return sorted((set(bound_inside) & read_after) - bound_elsewhere, key=bound_inside.get)


def _banner(block, location):
    part, indent = block.part, block.indent
    rule = f"{indent}# {'=' * (BANNER_WIDTH - len(indent))}"
    head = (f"PART {part.name} ({part.points} points), {block.function or location}: "
            f"{part.functions.get(block.function, EXERCISE)}")
    body = textwrap.wrap(head, BANNER_WIDTH - len(indent) - 2)
    body.append("Replace this banner and the raise below with your code.")
    message = f"{part.name}: implement {block.function or 'this cell'} ({location})"
    return ([rule, *(f"{indent}# {line}" for line in body), rule]
            + [f"{indent}{name} = None" for name in _names_to_initialise(block)]
            + [f'{indent}raise NotImplementedError("{message}")'])


def _unread(tree):
    """Names bound and never read: {(function, name): (line, lint code)} for top-level imports
    (function "") and for the names assigned in every function."""
    unread = {}
    read = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                name = (alias.asname or alias.name).split(".")[0]
                if name not in read:
                    unread[("", name)] = (alias.lineno, "F401")
    for qualname, function in _functions(tree):
        read = {n.id for n in ast.walk(function) if isinstance(n, ast.Name)
                and isinstance(n.ctx, ast.Load)}
        for n in _assigned_names(function):
            if n.id not in read:
                unread[(qualname, n.id)] = (n.lineno, "F841")
    return unread


def _assigned_names(function):
    """The Name targets of ``name = ...`` and ``a, b = x, y`` in a function: the assignments a
    linter reports when the name is never read (unpacking anything but a tuple it lets pass)."""
    for node in ast.walk(function):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    yield target
                elif isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                    yield from (e for e in target.elts if isinstance(e, ast.Name))


def student_source(source, where, part_of, assigned, is_module=True):
    """The student's version of one file (or cell), and the (part, function) of every block.

    ``part_of(function, line)`` gives the Part a block belongs to (or raises MarkerError);
    ``assigned`` holds the names of the parts to take out. ``is_module`` files also get a
    ``# noqa`` on names only removed code read (notebook cells are not linted).
    """
    lines = source.split("\n")
    blocks = find_blocks(lines, where)
    if not blocks:
        return source, set()
    tree = _parse(source, where, cell=not is_module)
    for block in blocks:
        block.function, block.scope = _enclosing_function(tree, block.begin)
        block.part = part_of(block.function, block.begin)
    out, position = [], 0
    for block in blocks:
        out += lines[position:block.begin - 1]
        if block.part.name in assigned:
            out += _banner(block, where)
        else:
            out += lines[block.begin:block.end - 1]
        position = block.end
    out += lines[position:]
    result = "\n".join(out)
    new_tree = _parse(result, f"{where} (student version)", cell=not is_module)
    if is_module and Path(where).name != "__init__.py":
        result = _keep_names(result, tree, new_tree)
    return result, {(block.part.name, block.function) for block in blocks}


def _keep_names(result, original_tree, new_tree):
    """Add a ``# noqa`` to the imports and locals that were read before the blocks went and are
    not now."""
    lines = result.split("\n")
    before = _unread(original_tree)
    for key, (line_number, code) in _unread(new_tree).items():
        line = lines[line_number - 1]
        if key not in before and "noqa" not in line:
            lines[line_number - 1] = line + NOQA.format(code)
    return "\n".join(lines)


def _part_in_file(relative_path):
    """part_of for a package file: the table row naming this file and function."""
    def part_of(function, line):
        for part in PARTS:
            if part.file == relative_path and function in part.functions:
                return part
        raise MarkerError(f"{PACKAGE}/{relative_path}:{line}: marked block in "
                          f"{function or 'module-level code'} belongs to no part of the table in "
                          f"minivgg/assignment/parts.py")
    return part_of


def _part_in_notebook(notebook):
    """part_of for a notebook: the table row whose function the block sits in, or the notebook's
    own exercise."""
    exercise = Part(notebook.stem, f"notebooks/{notebook.name}", 0, (), {})

    def part_of(function, line):
        return next((part for part in PARTS if function in part.functions), exercise)
    return part_of


# The other backends' versions of an assigned function hold its solution (Numba kernels, NumPy
# tricks), so in a student's copy they run the student's own code instead: (file, function) ->
# (the parts that blank it, a part that keeps it, the body that replaces it). The private
# functions only they called (the compiled kernels) are removed with them.
INTO = "return _into(out, {})"
DELEGATES = {
    ("kernels/jit.py", "im2col"): (("im2col", "im2col_numpy"), None,
                                   INTO.format("naive.im2col(x, kernel, stride, padding)")),
    ("kernels/jit.py", "col2im"): (("im2col", "im2col_numpy"), None, INTO.format(
        "naive.col2im(cols, x_shape, kernel, stride, padding)")),
    ("kernels/jit.py", "maxpool_forward"): (("maxpool",), None,
                                            INTO.format("naive.maxpool_forward(x, kernel, stride)")),
    ("kernels/jit.py", "maxpool_backward"): (("maxpool",), None, INTO.format(
        "naive.maxpool_backward(dout, argmax, x_shape)")),
    ("kernels/jit.py", "lrn_forward"): (("lrn",), None,
                                        "return naive.lrn_forward(x, size, alpha, beta, k)"),
    ("kernels/jit.py", "lrn_backward"): (("lrn",), None, "return naive.lrn_backward(dout, x, "
                                                          "scale, size, alpha, beta)"),
    ("kernels/vectorized.py", "maxpool_forward"): (("maxpool",), None,
                                                   "return naive.maxpool_forward(x, kernel, stride)"),
    ("kernels/vectorized.py", "maxpool_backward"): (("maxpool",), None, "return "
                                                    "naive.maxpool_backward(dout, argmax, x_shape)"),
    ("kernels/vectorized.py", "lrn_forward"): (("lrn",), None,
                                               "return naive.lrn_forward(x, size, alpha, beta, k)"),
    ("kernels/vectorized.py", "lrn_backward"): (("lrn",), None, "return naive.lrn_backward(dout, "
                                                                "x, scale, size, alpha, beta)"),
    ("kernels/vectorized.py", "im2col"): (("im2col",), "im2col_numpy",
                                          "return naive.im2col(x, kernel, stride, padding, out)"),
    ("kernels/vectorized.py", "col2im"): (("im2col",), "im2col_numpy", "return naive.col2im("
                                          "cols, x_shape, kernel, stride, padding, out)"),
    ("kernels/naive.py", "im2col"): (("im2col_numpy",), "im2col", "from . import vectorized\n"
                                     "return vectorized.im2col(x, kernel, stride, padding, out)"),
    ("kernels/naive.py", "col2im"): (("im2col_numpy",), "im2col", "from . import vectorized\n"
                                     "return vectorized.col2im(cols, x_shape, kernel, stride, "
                                     "padding, out)"),
    ("kernels/jit.py", "relu_forward"): (("relu",), None, "from ..backend import use_backend\n"
                                         "from ..layers.activation import ReLU\n"
                                         "with use_backend(\"numpy\"):       # your ReLU\n"
                                         "    return ReLU().forward(x)"),
    ("kernels/jit.py", "relu_backward"): (("relu",), None, "from ..backend import use_backend\n"
                                          "from ..layers.activation import ReLU\n"
                                          "layer = ReLU()\nlayer._y = y\n"
                                          "with use_backend(\"numpy\"):       # your ReLU\n"
                                          "    return layer.backward(dout)"),
    ("kernels/jit.py", "dropout_apply"): (("dropout",), None, "from ..backend import use_backend\n"
                                          "from ..layers.dropout import Dropout\n"
                                          "layer = Dropout(p)\nlayer._draws = u\n"
                                          "with use_backend(\"numpy\"):       # your Dropout\n"
                                          "    return layer._apply(x)"),
}
INTO_HELPER = '''


def _into(out, result):
    """``result`` (an array or a tuple of them) copied into ``out`` when it is given."""
    if out is None:
        return result
    pairs = zip(out, result) if isinstance(out, tuple) else [(out, result)]
    for target, value in pairs:
        target[...] = value
    return out
'''


def _only_for(original, replaced):
    """The private top-level functions of ``original`` (the reference file) that only the
    functions in ``replaced`` use, directly or through each other."""
    tree = ast.parse(original)
    users = {}                      # private function -> top-level names whose code names it
    for node in tree.body:
        owner = node.name if isinstance(node, ast.FunctionDef) else None
        for name in {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}:
            users.setdefault(name, set()).add(owner)
    private = {node.name for node in tree.body
               if isinstance(node, ast.FunctionDef) and node.name.startswith("_")}
    gone = set(replaced)
    while True:
        more = {f for f in private - gone if users.get(f) and users[f] <= gone}
        if not more:
            return gone - set(replaced)
        gone |= more


def delegate(source, relative, assigned, original):
    """A package file with the other backends' versions of assigned functions replaced by calls
    of the student's own code (DELEGATES), and the private functions only they used removed."""
    rows = {function: body for (file, function), (parts, keep, body) in DELEGATES.items()
            if file == relative and set(parts) & set(assigned) and keep not in assigned}
    if not rows:
        return source
    tree = ast.parse(source)
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    missing = sorted(set(rows) - set(functions))
    if missing:
        raise MarkerError(f"{PACKAGE}/{relative}: no function {', '.join(missing)} to replace "
                          f"(make.py's DELEGATES names it)")
    orphans = _only_for(original, rows)
    lines = source.split("\n")
    for node in sorted((functions[name] for name in [*rows, *orphans]), key=lambda n: -n.lineno):
        if node.name in orphans:
            start = min([node.lineno] + [d.lineno for d in node.decorator_list])
            del lines[start - 1:node.end_lineno]
            continue
        first = node.body[0]
        docstring = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
        start = first.end_lineno + 1 if docstring else first.lineno
        indent = " " * (node.col_offset + 4)
        body = [f"{indent}# your own code runs here (this was a solution of the assignment)"]
        if "naive." in rows[node.name]:
            body.append(f"{indent}from . import naive")
        body += [indent + line for line in rows[node.name].split("\n")]
        lines[start - 1:node.end_lineno] = body
    result = re.sub(r"\n{4,}", "\n\n\n", "\n".join(lines))
    if "_into(" in result and "def _into(" not in result:
        result = result.rstrip("\n") + INTO_HELPER
    return result


def _has_markers(text):
    return any(line.strip() in (BEGIN, END) for line in text.split("\n"))


def _cells_with_markers(notebook):
    return [(i, cell) for i, cell in enumerate(notebook["cells"])
            if cell["cell_type"] == "code" and _has_markers("".join(cell["source"]))]


def student_notebook(path, assigned):
    """The student's version of a notebook (a dict), and the (part, function) of every block."""
    notebook = json.loads(path.read_text())
    part_of, seen = _part_in_notebook(path), set()
    marked = dict(_cells_with_markers(notebook))
    for i, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "code":
            continue
        cell["outputs"], cell["execution_count"] = [], None
        if i in marked:
            text, parts = student_source("".join(cell["source"]),
                                         f"notebooks/{path.name}[cell {i}]", part_of, assigned,
                                         is_module=False)
            cell["source"] = text.splitlines(keepends=True)
            seen |= parts
    return add_student_cells(notebook, path.name[:2], assigned), seen


def _package_files(package_dir):
    for path in sorted(package_dir.rglob("*")):
        relative = path.relative_to(package_dir)
        if path.is_file() and not any(part in SKIPPED for part in relative.parts) \
                and path.suffix not in COMPILED:
            yield path, relative.as_posix()


def _notebooks(root):
    return sorted((root / "notebooks").glob("*.ipynb")) if (root / "notebooks").is_dir() else []


def exercise_names(root=REFERENCE_ROOT):
    """Names ``--only`` accepts: the table's parts, then the notebooks that hold marked cells."""
    notebooks = [nb.stem for nb in _notebooks(Path(root))
                 if _cells_with_markers(json.loads(nb.read_text()))]
    return [part.name for part in PARTS] + notebooks


def select_parts(only, names):
    """The assigned part names: all of ``names`` when ``only`` is empty, else ``only``, checked."""
    if not only:
        return list(names)
    unknown = [name for name in only if name not in names]
    if unknown:
        raise ValueError(f"--only: unknown part(s) {', '.join(unknown)}; the parts are "
                         f"{', '.join(names)}")
    problems = given_away(only)
    if problems:
        raise ValueError(f"--only {','.join(only)}: {'; '.join(problems)}; assign "
                         f"--only {','.join(completed(only))}")
    return list(dict.fromkeys(only))


def default_spec(out):
    """Where ``make`` puts the instructor's assignment file for the copy ``out``: beside it."""
    out = Path(out).resolve()
    return out.parent / f"{out.name}.assignment.json"


def make_assignment(out, only=None, root=REFERENCE_ROOT, force=False, spec=None, seed=None):
    """Write the student's copy of ``root``/minivgg (and notebooks) into ``out``, and the
    instructor's assignment file to ``spec`` (default: :func:`default_spec`); return the parts
    assigned. Nothing is written if a file has a marker problem."""
    import numpy as np

    from .grade import _reference, make_spec, part_cases
    from .selfcheck import PUBLIC, PUBLIC_SEED, save_public
    root, out = Path(root), Path(out)
    spec = Path(spec) if spec else default_spec(out)
    assigned = select_parts(only, exercise_names(root))
    for path in (out / PACKAGE, spec):
        if path.exists() and not force:
            raise FileExistsError(f"{path} exists; pass --force to replace it")
    texts, copies, seen = {}, {}, set()
    for path, relative in _package_files(root / PACKAGE):
        source = path.read_text() if path.suffix == ".py" else ""
        text = source
        if _has_markers(source):
            text, parts = student_source(source, f"{PACKAGE}/{relative}", _part_in_file(relative),
                                         assigned)
            seen |= parts
        text = delegate(text, relative, assigned, source)
        if text != source:
            texts[Path(PACKAGE, relative)] = _keep_names(text, ast.parse(source), ast.parse(text))
        else:
            copies[Path(PACKAGE, relative)] = path
    graded = [part for part in PARTS if part.name in assigned]
    for path in _notebooks(root):
        notebook, parts = student_notebook(path, assigned)
        texts[Path("notebooks", path.name)] = json.dumps(notebook, indent=1, ensure_ascii=False)
        seen |= parts
    missing = [f"{part.name}: {function} in {PACKAGE}/{part.file}" for part in PARTS
               for function in part.functions if (part.name, function) not in seen]
    if missing:
        raise MarkerError(f"the parts table names functions without a marked block: "
                          f"{'; '.join(missing)}")
    copies.update({Path(name): root / name for name in PROJECT_FILES if (root / name).is_file()})
    texts[Path("README.md")] = student_readme(graded)
    texts[Path(MANIFEST)] = json.dumps({"parts": assigned}, indent=1)
    if force:
        shutil.rmtree(out / PACKAGE, ignore_errors=True)
    for relative, text in texts.items():
        (out / relative).parent.mkdir(parents=True, exist_ok=True)
        (out / relative).write_text(text if text.endswith("\n") else text + "\n")
    for relative, path in copies.items():
        if relative not in texts:
            (out / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, out / relative)
    reference = _reference()
    for index, part in enumerate(graded):        # the self-check's cases: public inputs, answers
        save_public(part.name, part_cases(part, reference, np.random.default_rng([PUBLIC_SEED, index])),
                    out / PACKAGE / PUBLIC)
    spec.parent.mkdir(parents=True, exist_ok=True)
    spec.write_text(json.dumps(make_spec(assigned, seed), indent=1) + "\n")
    return assigned


def student_readme(parts):
    """The README of a student's copy: what to implement, where, how to check it, what to hand in."""
    parts = sorted(parts, key=lambda p: list(EXERCISES).index(p.name))      # the course's order
    rows = "\n".join(f"| `{p.name}` | {p.points} | `minivgg/{p.file}` | "
                     f"{', '.join(f'`{f}`' for f in p.functions)} | {EXERCISES[p.name][0]} |"
                     for p in parts)
    total = sum(p.points for p in parts)
    modules = ", ".join(f"`{m}`" for m in PRELOAD if not m.startswith("numpy"))
    return f"""# Your minivgg assignment

You implement parts of minivgg, a from-scratch NumPy reimplementation of the VGG paper (Simonyan &
Zisserman, ICLR 2015). Each part is a banner in the code saying what to write, followed by a
`raise NotImplementedError` that you replace with your code. Do the parts in this order
({total} points in all):

| part | points | file | function(s) | notebook |
|---|---|---|---|---|
{rows}

The docstrings above each banner give the shapes and the equation; `minivgg/kernels/__init__.py`
gives the conventions every kernel keeps (the order of im2col's rows, the max-pool tie, NaN and
-inf rules).

## Setting up

    python3 -m venv .venv && . .venv/bin/activate
    pip install -e ".[plot]" jupyterlab     # this folder, editable: everything runs your code
    jupyter lab notebooks/

or, without a browser, run a notebook top to bottom (it stops at the check of the first part that
does not pass yet): `jupyter nbconvert --to notebook --execute --inplace notebooks/01_*.ipynb`
(nbconvert comes with jupyterlab).

The notebooks and `python -m minivgg` import the `minivgg` of this folder once it is installed
this way (`-e`: your edits take effect without installing again).

## Which code runs

Layers call the kernels of a *backend*: `"naive"` (plain loops, `kernels/naive.py`), `"numpy"`
(`kernels/vectorized.py`) or `"numba"`. In your copy the NumPy and Numba versions of a kernel you
must write run *your* naive one (their solutions are not in your copy), except `im2col`/`col2im`
on `"numpy"`, which are the part `im2col_numpy` if you have it. Choose with
`minivgg.set_backend("naive")`, `with minivgg.use_backend("numpy"): ...`, a layer's
`backend=` argument, or `MINIVGG_BACKEND=naive` in the environment. The grader runs your layers on
the naive and numpy backends, with its own im2col (so an unfinished im2col does not cost Conv2d;
call the kernels as `kernels(self.backend).im2col(...)`, never one backend's module directly), in
float64 and in float32 (a float32 input must give a float32 result, forward and backward), calls
your kernels with `out=` buffers the way Conv2d does (a strided view: fill `out` when it is given),
and runs a layer's forward twice before its backward (backward must use what the last forward
kept).

## Checking your work

    python -m minivgg check              # every part of your assignment
    python -m minivgg check im2col lrn   # just these
    python -m minivgg check -v maxpool   # each of the part's checks, with its points

runs the grader's own checks, with its hints and its share of points per check, on public inputs
stored in `minivgg/assignment/public/`; a part's line shows its points and the first check it
fails, `-v` (`--verbose`) lists every check. The grader uses the same checks on fresh random inputs, so
code that passes here because it is right passes there too; code that recognises these inputs
does not.

The notebooks in `notebooks/` are the exercises, in the order above: each part has a "Your part"
cell where the notebook first needs it, followed by a cell that runs this check for that part and
stops the notebook, with the check's hint, until the part passes. The cells before it run without
it. Parts of earlier notebooks are checked the same way before the first cell that needs them.

## What to hand in

This folder's `minivgg/` directory, as it is (no symbolic links; only `.py` files are read). Your
code runs in a separate, limited process when graded: 30 s of CPU time per part (unless the
course sets another limit), 1 GiB of memory, no other files, no threads or other processes, no
network (no socket that reaches outside the process can be opened on x86_64 and aarch64
Linux; the course's rules forbid it everywhere). Printing is fine but is not shown to you in
full. It may import NumPy, your own package and these standard modules only: {modules}.
The library's own convolutions (`conv/direct.py`, `conv/winograd.py`, `kernels/winograd.py`) do
not run there: the convolution parts are yours to write.
"""


def add_arguments(parser):
    from ..cli.common import nonnegative_int  # the cli package imports this one
    parser.add_argument("out", metavar="OUT", help="directory for the student's copy")
    parser.add_argument("--only", metavar="NAMES", action="append", default=[],
                        help="comma-separated parts to assign (default: all); the others stay solved")
    parser.add_argument("--force", action="store_true",
                        help="replace OUT/minivgg and the assignment file if they exist")
    parser.add_argument("--spec", metavar="FILE", help="the instructor's assignment file "
                        "(default: OUT.assignment.json beside OUT); keep it from students")
    parser.add_argument("--seed", type=nonnegative_int, help="fix the grader's inputs (default: fresh at "
                                                 "every grading)")
    parser.set_defaults(run=run)


def run(args):
    """Run ``minivgg assignment make`` with parsed arguments; returns the exit code."""
    only = [name.strip() for names in args.only for name in names.split(",") if name.strip()]
    try:
        assigned = make_assignment(args.out, only, force=args.force, spec=args.spec,
                                   seed=args.seed)
    except (ValueError, FileExistsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote the student's copy to {args.out}; parts to implement: {', '.join(assigned)}\n"
          f"the instructor's assignment file (grade with --assignment; keep it from students): "
          f"{args.spec or default_spec(args.out)}")
    return 0


def make_main(argv=None):
    """``minivgg assignment make OUT [--only NAMES] [--force] [--spec FILE] [--seed N]``."""
    parser = argparse.ArgumentParser(prog="minivgg assignment make", allow_abbrev=False,
                                     description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))

#!/usr/bin/python3
"""run_recipes.py --build DIR --cmake CMAKE DOC_OR_DIR...: runs the documents' recipes.

A recipe is a fenced code block preceded by an HTML comment (blank lines may
come between):

    <!-- recipe: NAME -->              the block is run: sh/bash/shell blocks
                                       with bash -euo pipefail, python blocks
                                       with python3
    <!-- recipe: NAME file=app.cc -->  the block is written to app.cc, for
                                       the recipes after it

The build is installed into a temporary prefix, which replaces /opt/execmem in
every block (recipes are written for that prefix). Each document's recipes
run in order, in one fresh directory, with the prefix's bin/ and /usr/bin
first on PATH and no LD_PRELOAD or EXECMEM_* variable inherited. A marker not
followed by a block, or a block of a language it cannot run without file=, is
an error, as is a directory argument holding no recipe at all. Exit status 0
when every recipe succeeded.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

MARKER = re.compile(r"^<!--\s*recipe:\s*([A-Za-z0-9_.-]+)(?:\s+file=(\S+))?\s*-->\s*$")
FENCE = re.compile(r"^(```+|~~~+)\s*([A-Za-z0-9_+-]*)\s*$")
PREFIX_IN_DOCS = "/opt/execmem"
SHELLS = {"sh", "bash", "shell", ""}
TIMEOUT = 600


class Recipe:
    def __init__(self, doc, line, name, file, lang, text):
        self.doc, self.line, self.name, self.file, self.lang, self.text = (
            doc, line, name, file, lang, text)


def parse(doc):
    """The recipes of one Markdown document, in order; ValueError on a bad marker."""
    lines = open(doc, encoding="utf-8").read().split("\n")
    recipes = []
    i = 0
    while i < len(lines):
        m = MARKER.match(lines[i].strip())
        if not m:
            i += 1
            continue
        where = f"{doc}:{i + 1}"
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        fence = FENCE.match(lines[j]) if j < len(lines) else None
        if fence is None:
            raise ValueError(f"{where}: recipe {m.group(1)} is not followed by a fenced block")
        k = j + 1
        while k < len(lines) and lines[k].strip() != fence.group(1):
            k += 1
        if k >= len(lines):
            raise ValueError(f"{where}: recipe {m.group(1)}: the block is not closed")
        lang = fence.group(2).lower()
        if m.group(2) is None and lang not in SHELLS and lang != "python":
            raise ValueError(f"{where}: recipe {m.group(1)}: a '{lang}' block needs file=NAME")
        recipes.append(Recipe(doc, i + 1, m.group(1), m.group(2), lang,
                              "\n".join(lines[j + 1:k]) + "\n"))
        i = k + 1
    return recipes


def documents(args):
    docs = []
    for a in args:
        if os.path.isdir(a):
            found = sorted(os.path.join(a, f) for f in os.listdir(a) if f.endswith(".md"))
            docs += found
        elif os.path.isfile(a):
            docs.append(a)
        else:
            raise ValueError(f"{a}: no such file or directory")
    return docs


def environment(prefix):
    env = {k: v for k, v in os.environ.items()
           if k != "LD_PRELOAD" and not k.startswith("EXECMEM_") and not k.startswith("PKG_CONFIG")
           and k != "PYTHONPATH"}
    env["PATH"] = os.pathsep.join([os.path.join(prefix, "bin"), "/usr/bin", "/bin",
                                   env.get("PATH", "")])
    return env


def run(recipe, workdir, prefix, env):
    text = recipe.text.replace(PREFIX_IN_DOCS, prefix)
    if recipe.file:
        path = os.path.join(workdir, recipe.file)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return True, "", 0.0
    if recipe.lang == "python":
        script = os.path.join(workdir, f"{recipe.name}.py")
        with open(script, "w", encoding="utf-8") as f:
            f.write(text)
        command = ["python3", script]
    else:
        command = ["bash", "-euo", "pipefail", "-c", text]
    start = time.monotonic()
    try:
        done = subprocess.run(command, cwd=workdir, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired as e:
        return False, f"timed out after {TIMEOUT} s\n{e.output or ''}", TIMEOUT
    return done.returncode == 0, (f"exit status {done.returncode}\n" if done.returncode else
                                  "") + done.stdout, time.monotonic() - start


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", required=True, help="the build directory to install")
    parser.add_argument("--cmake", default="cmake")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("docs", nargs="+", help="Markdown files or directories of them")
    a = parser.parse_args(argv)
    try:
        docs = documents(a.docs)
        recipes = {doc: parse(doc) for doc in docs}
    except (ValueError, OSError) as e:
        print(f"run_recipes: {e}", file=sys.stderr)
        return 2
    total = sum(len(r) for r in recipes.values())
    for arg in a.docs:
        if os.path.isdir(arg) and not any(recipes[d] for d in docs if d.startswith(arg)):
            print(f"run_recipes: no recipe in {arg}", file=sys.stderr)
            return 1
    tmp = tempfile.mkdtemp(prefix="execmem-recipes-")
    try:
        prefix = os.path.join(tmp, "prefix")
        done = subprocess.run([a.cmake, "--install", a.build, "--prefix", prefix],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if done.returncode != 0:
            print(f"run_recipes: cmake --install failed:\n{done.stdout}", file=sys.stderr)
            return 1
        env = environment(prefix)
        failures = 0
        for doc, rs in recipes.items():
            if not rs:
                print(f"--   {doc}: no recipes")
                continue
            workdir = os.path.join(tmp, re.sub(r"[^A-Za-z0-9]+", "-", os.path.basename(doc)))
            os.makedirs(workdir)
            for r in rs:
                ok, output, seconds = run(r, workdir, prefix, env)
                what = f"{doc}:{r.line} {r.name}" + (f" (file {r.file})" if r.file else "")
                print(f"{'ok  ' if ok else 'FAIL'} {what}" +
                      ("" if r.file else f" ({seconds:.1f} s)"), flush=True)
                if not ok:
                    failures += 1
                    print("  ---- the block (with the test's prefix) ----")
                    print("  " + r.text.replace(PREFIX_IN_DOCS, prefix).rstrip()
                          .replace("\n", "\n  "))
                    print("  ---- its output ----")
                    print("  " + output.rstrip().replace("\n", "\n  "), flush=True)
        print(f"run_recipes: {total} recipe(s) in {len(docs)} document(s), {failures} failed")
        return 1 if failures else 0
    finally:
        if a.keep:
            print(f"run_recipes: kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

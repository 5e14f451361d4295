#!/usr/bin/env python3
"""Report of a bench/agents.sh directory (python3 standard library only).

    python3 bench/agents_report.py DIR          # writes DIR/report.md and DIR/runs.csv, prints the report
    python3 bench/agents_report.py --line RUN   # one line about one run directory

A run is DIR/<name>/ (a mixq search run directory) with its log DIR/<name>.log, whose first line
is "# settings: <mixq search arguments>". Runs are grouped by (model, target, budget); within a
group, each agent is paired with `random` seed by seed. Fields missing from summary.json are
shown as "-", so summaries from older or newer mixq versions both read.
"""
import csv
import datetime
import glob
import json
import math
import os
import shlex
import subprocess
import sys

REFERENCE = "random"
# t_{0.975, df} for df = 1..30; above 30, a Cornish-Fisher expansion around z = 1.959964
T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
        2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
        2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]
METRICS = ["latency", "energy", "size", "bitops"]
# config.json keys shown as a group's settings (and checked to agree within it)
SETTING_KEYS = [("episodes", "episodes"), ("warmup", "warmup"), ("finetune_images", "finetune images"),
                ("eval_images", "eval images"), ("calib_images", "calib images"), ("val_images", "val images"),
                ("final_epochs", "final epochs"), ("bits", "bits"), ("mode", "mode"), ("data", "data"),
                ("hw_batch", "hw batch"), ("lr", "lr"), ("final_lr", "final lr"), ("batch", "batch")]


def t975(df):
    if df < 1:
        return None
    if df <= 30:
        return T975[df - 1]
    z = 1.959964
    return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)


def num(x):
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def mean(xs):
    return sum(xs) / len(xs) if xs else None


def sd(xs):
    if len(xs) < 2:
        return None
    m = mean(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def f(x, nd=2, sign=False):
    if x is None:
        return "-"
    return ("%+.*f" if sign else "%.*f") % (nd, x)


def pm(xs, nd=2):
    if not xs:
        return "-"
    s = sd(xs)
    return f(mean(xs), nd) + (" ± " + f(s, nd) if s is not None else "")


def load_json(path):
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def read_log(path):
    """(settings dict, settings string, last non-empty line, resumed?, 1-min load averages) of a run's log; empty if none."""
    try:
        with open(path, errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return {}, None, None, False, []
    settings, text = {}, None
    resumed = any(l.startswith("# resumed") for l in lines)
    loads = [as_float(l.split(":", 1)[1].split()[0]) for l in lines
             if l.startswith("# load ") and ":" in l and l.split(":", 1)[1].split()]
    loads = [x for x in loads if x is not None]
    if lines and lines[0].startswith("# settings: "):
        text = lines[0][len("# settings: "):]
        try:
            args = shlex.split(text)
        except ValueError:
            args = []
        if args and args[0] == "search":
            args = args[1:]
        i = 0
        while i < len(args):
            a = args[i]
            if a.startswith("--") and i + 1 < len(args) and not args[i + 1].startswith("--"):
                settings[a[2:]] = args[i + 1]  # the last of a repeated flag wins, as in mixq
                i += 2
            elif a.startswith("--"):
                settings[a[2:]] = True
                i += 1
            else:
                settings.setdefault("model", a)
                i += 1
    last = next((l.strip() for l in reversed(lines) if l.strip() and not l.startswith("# ")), None)
    return settings, text, last, resumed, loads


def parse_budget(b):
    """'latency=0.5,energy=2ms' -> [('latency', '0.5'), ('energy', '2ms')]"""
    out = []
    for part in str(b or "").split(","):
        if "=" in part:
            k, v = part.split("=", 1)
            out.append((k.strip(), v.strip()))
    return out


def as_float(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def fits_of(summary, budget):
    """True / False whether the chosen policy fits every budget, None when it cannot be told."""
    def all_bools(vals):
        vals = [v.get("fits") if isinstance(v, dict) else v for v in vals]
        return all(vals) if vals and all(isinstance(v, bool) for v in vals) else None

    if not summary:
        return None
    fit = summary.get("fits")
    if isinstance(fit, bool):
        return fit
    if isinstance(fit, dict):
        r = all_bools(list(fit.values()))
        if r is not None:
            return r
    if isinstance(fit, list):
        r = all_bools(fit)
        if r is not None:
            return r
    budgets = summary.get("budgets")
    if isinstance(budgets, list) and budgets:
        r = all_bools(budgets)
        if r is not None:
            return r
    items = parse_budget(budget)
    if not items:
        return None
    br = summary.get("budget_ratio")
    ok = True
    for idx, (metric, value) in enumerate(items):
        limit = as_float(value)  # a fraction of W8A8
        if limit is None:        # absolute (2ms): the resolved fraction, if the summary has it
            if isinstance(br, dict):
                limit = num(br.get(metric))
            elif isinstance(br, list) and len(br) == len(items):
                limit = num(br[idx])
            elif len(items) == 1:
                limit = num(br)
        ratio = num(summary.get(metric + "_ratio"))
        if limit is None or ratio is None:
            return None
        ok = ok and ratio <= limit + 1e-6  # summary.json rounds ratios to 6 decimals
    return ok


class Run:
    def __init__(self, root, name):
        self.name = name
        self.dir = os.path.join(root, name)
        self.settings, self.settings_text, self.last_line, self.resumed, self.loads = read_log(self.dir + ".log")
        self.config = load_json(os.path.join(self.dir, "config.json")) or {}
        self.summary = load_json(os.path.join(self.dir, "summary.json"))
        s, c, g = self.summary or {}, self.config, self.settings
        self.model = g.get("model") or c.get("model") or "?"
        self.hw = g.get("hw") or c.get("hw") or "?"
        self.budget = g.get("budget") or (c.get("budget") if isinstance(c.get("budget"), str) else None) or "?"
        self.agent = g.get("agent") or s.get("agent") or c.get("agent") or "?"
        self.seed = str(g.get("seed") or c.get("seed") or "?")
        self.complete = self.summary is not None
        self.test = num(s.get("final_test_accuracy"))
        self.val = num(s.get("final_val_accuracy"))
        self.val_best = num(s.get("best_val_accuracy"))
        self.scored = num(s.get("candidates_scored"))
        self.distinct = num(s.get("distinct"))
        self.cache_hits = num(s.get("cache_hits"))
        self.ratios = {m: num(s.get(m + "_ratio")) for m in METRICS}
        self.search_s = num(s.get("search_s"))
        self.final_s = num(s.get("final_s"))
        self.fits = fits_of(self.summary, self.budget if self.budget != "?" else c.get("budget"))

    def key(self):
        return (self.model, self.hw, self.budget)


def seed_key(s):
    return (0, int(s), s) if s.isdigit() else (1, 0, s)


def agent_key(a):
    return (a != REFERENCE, a)


def scan(root):
    names = set()
    for p in glob.glob(os.path.join(glob.escape(root), "*")):
        b = os.path.basename(p)
        if os.path.isdir(p) and (os.path.exists(os.path.join(p, "config.json"))
                                 or os.path.exists(os.path.join(p, "summary.json"))):
            names.add(b)
        elif b.endswith(".log") and os.path.isfile(p):
            names.add(b[:-4])
    return [Run(root, n) for n in sorted(names)]


def cpu_name():
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def git_commit():
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        r = subprocess.run(["git", "-C", here, "describe", "--always", "--dirty"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True, timeout=10)
        return r.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def settings_of(run):
    return {k: run.config.get(k) for k, _ in SETTING_KEYS if k in run.config}


def fmt_setting(v):
    if isinstance(v, list):
        return "..".join(str(x) for x in v) if len(v) == 2 else str(v)
    return str(v)


def group_report(key, runs):
    model, hw, budget = key
    out = []
    out.append("## %s on %s, budget %s" % (os.path.basename(model).rsplit(".mixq", 1)[0], hw, budget))
    out.append("")
    done = [r for r in runs if r.complete]
    agents = sorted({r.agent for r in runs}, key=agent_key)
    seeds = sorted({r.seed for r in runs}, key=seed_key)
    # the settings every run shares, and the ones that differ (a mixed directory)
    vals = {}
    for r in runs:
        for k, v in settings_of(r).items():
            vals.setdefault(k, set()).add(json.dumps(v))
    shared = ["%s %s" % (label, fmt_setting(json.loads(next(iter(vals[k])))))
              for k, label in SETTING_KEYS if k in vals and len(vals[k]) == 1]
    differ = [label for k, label in SETTING_KEYS if k in vals and len(vals[k]) > 1]
    out.append("Model `%s`; seeds %s; %s." % (model, " ".join(seeds), ", ".join(shared) if shared else "settings: see the logs"))
    loads = [x for r in runs for x in r.loads]
    if loads:
        out.append("")
        out.append("1-min load average before and after each run: %.2f to %.2f (%d logical CPUs); a run adds its "
                   "own threads, and more than that makes the times less comparable." % (min(loads), max(loads), os.cpu_count() or 0))
    if differ:
        out.append("")
        out.append("**Warning: the runs in this group differ in %s; the comparison is not paired on equal settings.**"
                   % ", ".join(differ))
    out.append("")

    by = {(r.agent, r.seed): r for r in done}
    ref = {s: by[(REFERENCE, s)].test for s in seeds
           if (REFERENCE, s) in by and by[(REFERENCE, s)].test is not None}
    metrics = ["latency", "energy"] + [m for m, _ in parse_budget(budget) if m in METRICS and m not in ("latency", "energy")]
    has_distinct = any(r.distinct is not None for r in done)
    has_hits = any(r.cache_hits is not None for r in done)
    head = ["agent", "n", "test %", "Δ test vs %s" % REFERENCE, "95 % CI", "W/L/T", "val % (final)", "val % (search)",
            "scored"]
    head += (["distinct"] if has_distinct else []) + (["cache hits"] if has_hits else [])
    head += metrics + ["all fit", "search s", "final s"]
    rows = []
    for a in agents:
        rs = [by[(a, s)] for s in seeds if (a, s) in by]
        col = lambda attr: [getattr(r, attr) for r in rs if getattr(r, attr) is not None]
        if a == REFERENCE:
            d_mean, d_ci, wlt = "(reference)", "", ""
        else:
            diffs = [by[(a, s)].test - ref[s] for s in seeds if s in ref and (a, s) in by and by[(a, s)].test is not None]
            if diffs:
                m, s_, n = mean(diffs), sd(diffs), len(diffs)
                d_mean = f(m, 2, True) + ("" if n == len(rs) else " (%d pair%s)" % (n, "" if n == 1 else "s"))
                if s_ is not None:
                    h = t975(n - 1) * s_ / math.sqrt(n)
                    d_ci = "[%s, %s]" % (f(m - h, 2, True), f(m + h, 2, True))
                else:
                    d_ci = "-"
                eps = 1e-9
                wlt = "%d/%d/%d" % (sum(d > eps for d in diffs), sum(d < -eps for d in diffs),
                                    sum(abs(d) <= eps for d in diffs))
            else:
                d_mean, d_ci, wlt = "-", "-", "-"
        fits = [r.fits for r in rs]
        if not rs:
            fit = "-"
        elif all(x is True for x in fits):
            fit = "yes"
        elif any(x is False for x in fits):
            fit = "**no** (%d of %d)" % (sum(x is False for x in fits), len(rs))
        else:
            fit = "?"
        row = [a, str(len(rs)), pm(col("test")), d_mean, d_ci, wlt, pm(col("val")), pm(col("val_best")),
               f(mean(col("scored")), 1)]
        if has_distinct:
            row.append(f(mean(col("distinct")), 1))
        if has_hits:
            row.append(f(mean(col("cache_hits")), 1))
        row += [f(mean([r.ratios[m] for r in rs if r.ratios[m] is not None]), 3) for m in metrics]
        row += [fit, f(mean(col("search_s")), 1), f(mean(col("final_s")), 1)]
        rows.append(row)
    out += table(head, rows)
    out.append("")

    out.append("Test accuracy (%) per seed:")
    out.append("")
    prow = []
    for a in agents:
        cells = [a]
        for s in seeds:
            r = next((x for x in runs if x.agent == a and x.seed == s), None)
            if r is None:
                cells.append("-")
            elif not r.complete:
                cells.append("incomplete")
            else:
                cells.append(f(r.test) + (" †" if r.fits is False else "") + (" ‡" if r.resumed else ""))
        prow.append(cells)
    out += table(["agent"] + ["s%s" % s for s in seeds], prow)
    notes = []
    if any(r.fits is False for r in done):
        notes.append("† the chosen policy does not fit the budget.")
    if any(r.resumed for r in done):
        notes.append("‡ resumed after an interruption: its scored count and search time (summary.json's) "
                     "cover only the last part of the run.")
    if notes:
        out.append("")
        out.append(" ".join(notes))
    bad = [r for r in runs if not r.complete]
    if bad:
        out.append("")
        out.append("Incomplete or failed (not in the statistics):")
        for r in bad:
            out.append("- `%s`: %s" % (r.name, r.last_line or "no log"))
    out.append("")
    return out


def table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(head))) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def group_order(key):
    """model, target, then the budgets by metric and numeric value (latency=0.3 before latency=0.75)"""
    model, hw, budget = key
    items = [(m, as_float(v) if as_float(v) is not None else math.inf, v) for m, v in parse_budget(budget)]
    return (model, hw, items, budget)


def report(root):
    runs = scan(root)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = ["# Search agents, paired comparison", ""]
    commit = git_commit()
    try:
        with open(os.path.join(root, "commands.txt")) as fh:
            cmds = [l.rstrip("\n").split("\t") for l in fh if l.strip()]  # date, command[, CPU]
    except OSError:
        cmds = []
    here = "%s (%d logical CPUs)" % (cpu_name(), os.cpu_count() or 0)
    cpus = sorted({c[2] for c in cmds if len(c) > 2})
    out.append("- Report written %s%s; runs on %s%s." % (
        now, " from mixq %s" % commit if commit else "", ", ".join(cpus) if cpus else "(not recorded)",
        "" if cpus == [here] else "; report on %s" % here))
    uniq = {}  # command -> its start times
    for c in cmds:
        uniq.setdefault(c[1] if len(c) > 1 else "", []).append(c[0])
    if uniq:
        out.append("- Command%s:" % ("s" if len(uniq) > 1 else ""))
        for c, when in uniq.items():
            out.append("  - `%s` (started %s%s)" % (c, when[0], "; re-run %s" % ", ".join(when[1:]) if len(when) > 1 else ""))
    out.append("- Runs: `%s`, one directory per (model, target, budget, agent, seed), with its log beside it." % root)
    out.append("")
    if not runs:
        out.append("No runs found.")
    groups = {}
    for r in runs:
        groups.setdefault(r.key(), []).append(r)
    for k in sorted(groups, key=group_order):
        out += group_report(k, groups[k])
    out.append("Columns: n = seeds with a summary.json; test %% = test accuracy after the final fine-tune "
               "(whole test split), mean ± sd over seeds; Δ = paired difference of test accuracy against `%s` "
               "at the same seed, mean, with its 95 %% t-interval (mean ± t(0.975, n-1) · sd / √n); "
               "W/L/T = seeds where the agent's test accuracy is above / below / equal to `%s`'s; "
               "val %% (final) = validation accuracy after the final fine-tune; val %% (search) = the best "
               "candidate's score during the search (its --eval-images validation subset); scored = candidates "
               "scored (mean); distinct / cache hits where summary.json has them; latency, energy (and any other "
               "budget metric) = the chosen policy's cost over uniform W8A8 (mean); all fit = every chosen policy "
               "fits every budget (summary.json's fits, else its ratios against the budget); search s / final s = "
               "search and final fine-tune wall time (mean). \"-\" = not available." % (REFERENCE, REFERENCE))
    write_csv(root, runs)
    return "\n".join(out) + "\n"


def write_csv(root, runs):
    cols = ["model", "hw", "budget", "agent", "seed", "complete", "test", "val", "val_best", "scored", "distinct",
            "cache_hits"] + [m + "_ratio" for m in METRICS] + ["fits", "search_s", "final_s", "dir"]
    with open(os.path.join(root, "runs.csv"), "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for r in runs:
            vals = [r.model, r.hw, r.budget, r.agent, r.seed, int(r.complete), r.test, r.val, r.val_best, r.scored,
                    r.distinct, r.cache_hits] + [r.ratios[m] for m in METRICS] + [r.fits, r.search_s, r.final_s, r.dir]
            w.writerow(["" if v is None else v for v in vals])


def line(run_dir):
    root, name = os.path.split(os.path.normpath(run_dir))
    r = Run(root or ".", name)
    fit = {True: "yes", False: "NO", None: "?"}[r.fits]
    return ("  %s seed %s: test %s  val %s (search %s)  latency %s energy %s  scored %s  fits %s  search %s s  final %s s"
            % (r.agent, r.seed, f(r.test), f(r.val), f(r.val_best), f(r.ratios["latency"], 3),
               f(r.ratios["energy"], 3), f(r.scored, 0), fit, f(r.search_s, 1), f(r.final_s, 1)))


def main(argv):
    if len(argv) == 3 and argv[1] == "--line":
        print(line(argv[2]))
        return 0
    if len(argv) != 2 or argv[1].startswith("-"):
        sys.stderr.write(__doc__)
        return 2
    root = argv[1].rstrip("/") or "/"
    if not os.path.isdir(root):
        sys.stderr.write("agents_report.py: no directory '%s'\n" % root)
        return 2
    text = report(root)
    with open(os.path.join(root, "report.md"), "w") as fh:
        fh.write(text)
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:  # | head
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

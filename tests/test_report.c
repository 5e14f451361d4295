/* mixq report (src/report/report.c): the page is well-formed (xmllint --html, the whole page and
 * every SVG as XML), a fixture run directory renders the expected points and bars, bad or partial
 * run directories give a page plus notes (never a failure), the output is deterministic, a search
 * writes and refreshes report.html and survives a report it cannot write, 1000 candidates are
 * timed, and, where Debian's chromium is installed (scripts/deps.sh --browser), a real browser
 * renders the page: the screenshot is not blank and every figure holds drawn pixels.
 *
 * `test_report --check-png FILE.png` runs only that screenshot check, `--page-end FILE.png` prints
 * the last row that is not white (bench/report_browser.sh uses both).
 * MIXQ_REPORT_BROWSER=1 makes the browser test required (make bench-report): without chromium it
 * fails instead of not being run. */
#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "mixq/mixq.h"
#include "test.h"

#define FIXTURE TEST_FIXTURES "report/lenet5_haq"
#define CHROMIUM "/usr/bin/chromium"

/* ------------------------------------------------------------------ helpers */

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0, r;
    char *b = malloc(cap);
    while (b && (r = fread(b + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (n + 1 == cap) {
            char *nb = realloc(b, cap *= 2);
            if (!nb) {
                free(b);
                b = NULL;
            }
            b = nb;
        }
    }
    fclose(f);
    if (b) b[n] = 0;
    if (len) *len = n;
    return b;
}

static int count(const char *s, const char *e, const char *needle) {
    int n = 0;
    size_t k = strlen(needle);
    if (!s) return 0;
    for (const char *p = s; (p = strstr(p, needle)) != NULL && (!e || p < e); p += k) n++;
    return n;
}

/* The i-th <svg ...> whose class attribute starts with cls: [*b, *e) */
static int svg_nth(const char *html, const char *cls, int i, const char **b, const char **e) {
    char pat[96];
    *b = *e = NULL;
    snprintf(pat, sizeof pat, "class=\"%s", cls);
    for (const char *p = html; (p = strstr(p, "<svg ")) != NULL; p++) {
        const char *gt = strchr(p, '>'), *c = strstr(p, pat);
        if (!gt || !c || c > gt) continue;
        if (i-- > 0) continue;
        *b = p;
        *e = strstr(p, "</svg>");
        return *e != NULL;
    }
    return 0;
}

/* Occurrences of needle in the i-th SVG of class cls of page h (-1: no such SVG). */
static int in_svg(const char *h, const char *cls, int i, const char *needle) {
    const char *b = NULL, *e = NULL;
    return h && svg_nth(h, cls, i, &b, &e) ? count(b, e, needle) : -1;
}

static int run_sh(const char *cmd, char *out, size_t cap) {
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = 0, r;
    if (out && cap) out[0] = 0;
    char tmp[4096];
    while ((r = fread(tmp, 1, sizeof tmp, p)) > 0)
        if (out && n + 1 < cap) {
            size_t k = r < cap - 1 - n ? r : cap - 1 - n;
            memcpy(out + n, tmp, k);
            n += k;
            out[n] = 0;
        }
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int have_xmllint(void) {
    if (access("/usr/bin/xmllint", X_OK) == 0) return 1;
    test_skip("xmllint is not installed (libxml2-utils; scripts/deps.sh installs it)");
    return 0;
}

static const char *tmp_path(const char *name) {
    static char buf[8][1200];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, sizeof buf[0], "%s/%s", test_tmpdir(), name);
    return p;
}

/* The fixture's files into dst (created), in C: dst may hold any character. */
static int copy_fixture_c(const char *dst) {
    static const char *const files[] = {"config.json", "evals.jsonl", "pareto.csv", "pareto.json",
                                        "best_policy.json", "summary.json", "state.json"};
    if (mkdir(dst, 0755) && errno != EEXIST) return -1;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char a[1400], b[1400];
        size_t n = 0;
        snprintf(a, sizeof a, "%s/%s", FIXTURE, files[i]);
        snprintf(b, sizeof b, "%s/%s", dst, files[i]);
        char *t = slurp(a, &n);
        int bad = !t || test_write_file(b, t, n);
        free(t);
        if (bad) return -1;
    }
    return 0;
}

static int copy_dir(const char *src, const char *dst) {
    char cmd[3000];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s' && cp '%s'/* '%s'/", dst, dst, src, dst);
    return system(cmd);
}

typedef struct notes {
    int n;
    char all[8192];
} notes;

static void on_note(const char *dir, const char *text, void *user) {
    notes *nt = user;
    (void)dir;
    nt->n++;
    size_t k = strlen(nt->all);
    snprintf(nt->all + k, sizeof nt->all - k, "%s\n", text);
}

/* The report of one run directory into out, with its notes; returns the page (or NULL). */
static char *report1(const char *dir, const char *out, const char *model, notes *nt) {
    mixq_report_config c;
    mixq_report_config_default(&c);
    c.model = model;
    c.note = on_note;
    c.user = nt;
    memset(nt, 0, sizeof *nt);
    const char *dirs[1] = {dir};
    mixq_status st = mixq_report_write(dirs, 1, out, &c);
    CHECKF(st == MIXQ_OK, "report of %s: %s", dir, mixq_last_error());
    return st ? NULL : slurp(out, NULL);
}

/* A lenet5 float model file (untrained; the report needs its layers only). */
static const char *lenet5_file(void) {
    static char path[1200];
    if (path[0]) return path;
    snprintf(path, sizeof path, "%s/lenet5.mixq", test_tmpdir());
    mixq_model_config mc = {.arch = "lenet5", .in_c = 1, .in_h = 28, .in_w = 28, .classes = 10, .seed = 3};
    mixq_model *m = NULL;
    if (mixq_model_create(&mc, &m) || mixq_model_save(m, path)) path[0] = 0;
    mixq_model_free(m);
    return path;
}

/* ------------------------------------------------------------------ a synthetic run directory */

/* n candidates of a lenet5 search (5 layers, ends pinned at 8/8), every 25th uniform; with
 * kernels, best_policy.json gives conv2 (16 kernels) per-kernel bits in 4 runs of equal bits.
 * Returns the index of the chosen record (the most accurate that fits). */
static int write_synth(const char *dir, int n, const char *model, int kernels) {
    char p[1300];
    snprintf(p, sizeof p, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    if (system(p)) return -1;
    snprintf(p, sizeof p, "%s/config.json", dir);
    FILE *f = fopen(p, "w");
    if (!f) return -1;
    fprintf(f, "{\n  \"mixq_search\": 2,\n  \"model\": \"%s\",\n  \"data\": \"fashion-mnist\",\n  \"agent\": \"haq\",\n"
            "  \"hw\": \"bismo_edge\",\n  \"hw_batch\": 1,\n  \"budget\": \"latency=0.75\",\n"
            "  \"budget_ratios\": {\"latency\": 0.75},\n  \"mode\": \"resource\",\n  \"episodes\": %d,\n"
            "  \"bits\": [2, 8],\n  \"pin_ends\": true,\n  \"seed\": 7,\n  \"agent_settings\": {\"hidden\": 300}\n}\n",
            model, n);
    fclose(f);
    snprintf(p, sizeof p, "%s/evals.jsonl", dir);
    f = fopen(p, "w");
    uint64_t s = 12345;
    int best = -1;
    double best_acc = -1;
    int bw[5] = {0}, ba[5] = {0};
    for (int i = 0; f && i < n; i++) {
        int w[5], a[5];
        for (int l = 0; l < 5; l++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            w[l] = 2 + (int)((s >> 33) % 7);
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            a[l] = 2 + (int)((s >> 33) % 7);
        }
        if (i % 25 == 3)
            for (int l = 0; l < 5; l++) w[l] = a[l] = 2 + i % 7;
        w[0] = a[0] = w[4] = a[4] = 8;
        double mean = 0;
        for (int l = 1; l < 4; l++) mean += w[l] + a[l];
        mean /= 6;
        double lat = 0.25 + 0.75 * (mean - 2) / 6, acc = 92 - 30 / (mean * mean) - (double)((s >> 20) % 300) / 100;
        if (i % 40 == 7) acc = 10 + i % 5; /* collapsed candidates, below the axis */
        int fits = lat <= 0.75;
        fprintf(f, "{\"episode\": %d, \"w\": [%d,%d,%d,%d,%d], \"a\": [%d,%d,%d,%d,%d], \"acc\": %.4f, \"reward\": %.4f, "
                "\"fits\": %s, \"latency_ratio\": %.5f, \"energy_ratio\": %.5f, \"size_ratio\": %.5f, \"bitops_ratio\": %.5f}\n",
                i + 1, w[0], w[1], w[2], w[3], w[4], a[0], a[1], a[2], a[3], a[4], acc, 0.1 * (acc - 90.6),
                fits ? "true" : "false", lat, 0.3 + 0.6 * lat, (mean - 1) / 8, mean * mean / 64);
        if (fits && acc > best_acc) {
            best_acc = acc, best = i;
            memcpy(bw, w, sizeof bw);
            memcpy(ba, a, sizeof ba);
        }
    }
    if (f) fclose(f);
    snprintf(p, sizeof p, "%s/pareto.json", dir);
    if ((f = fopen(p, "w"))) {
        fprintf(f, "{\"fp32_accuracy\": 90.6, \"budget_metric\": \"latency\"}\n");
        fclose(f);
    }
    snprintf(p, sizeof p, "%s/best_policy.json", dir);
    if ((f = fopen(p, "w"))) {
        static const char *const names[5] = {"conv1", "conv2", "fc1", "fc2", "fc3"};
        fprintf(f, "{\n  \"mixq_policy\": 1,\n  \"default\": {\"w_bits\": 8, \"a_bits\": 8},\n  \"layers\": {\n");
        for (int l = 0; l < 5; l++) {
            if (l == 1 && kernels) { /* 16 kernels in runs 5 x bw, 4 x 2, 4 x bw, 3 x 3: widest bw */
                fprintf(f, "    \"conv2\": {\"w_bits\": [");
                for (int k = 0; k < 16; k++) fprintf(f, "%s%d", k ? "," : "", k < 5 ? bw[1] : k < 9 ? 2 : k < 13 ? bw[1] : 3);
                fprintf(f, "], \"a_bits\": %d},\n", ba[1]);
            } else
                fprintf(f, "    \"%s\": {\"w_bits\": %d, \"a_bits\": %d}%s\n", names[l], bw[l], ba[l], l < 4 ? "," : "");
        }
        fprintf(f, "  }\n}\n");
        fclose(f);
    }
    return best;
}

/* ------------------------------------------------------------------ well-formedness */

/* xmllint's HTML parser knows HTML 4 only: the one message it may give is "Tag X invalid" for
 * the SVG elements the page uses. The whole page is also XML (polyglot XHTML), and each SVG
 * parses alone as an SVG document. */
static void check_wellformed(const char *path, const char *html) {
    char cmd[2600], out[8192];
    snprintf(cmd, sizeof cmd, "xmllint --noout '%s' 2>&1", path);
    int rc = run_sh(cmd, out, sizeof out);
    CHECKF(rc == 0 && !out[0], "%s is not well-formed XML:\n%.2000s", path, out);
    snprintf(cmd, sizeof cmd, "xmllint --html --noout '%s' 2>&1 | grep 'error' | grep -v -E 'Tag (svg|g|circle|rect|path|"
             "line|text|title|polygon) invalid'", path);
    rc = run_sh(cmd, out, sizeof out);
    CHECKF(!out[0], "xmllint --html %s:\n%.2000s", path, out);
    int n = 0;
    for (const char *p = html; (p = strstr(p, "<svg ")) != NULL; n++) {
        const char *e = strstr(p, "</svg>");
        if (!e) {
            CHECKF(0, "an <svg> without </svg>");
            break;
        }
        char svg[1200];
        snprintf(svg, sizeof svg, "%s/one.svg", test_tmpdir());
        test_write_file(svg, p, (size_t)(e + 6 - p));
        snprintf(cmd, sizeof cmd, "xmllint --noout '%s' 2>&1", svg);
        rc = run_sh(cmd, out, sizeof out);
        CHECKF(rc == 0 && !out[0], "SVG %d of %s does not parse as XML:\n%.1500s", n, path, out);
        if (rc) break;
        p = e;
    }
    CHECKF(n >= 10, "%d SVGs in %s", n, path);
}

/* ------------------------------------------------------------------ tests */

/* The committed fixture: 40 candidates, 5 layers; the model is not there (a note). */
static void test_report_fixture(void) {
    if (!test_need_file(FIXTURE "/evals.jsonl")) return;
    const char *out = tmp_path("fixture.html");
    notes nt;
    char *h = report1(FIXTURE, out, NULL, &nt);
    if (!h) return;
    CHECKF(nt.n == 1 && strstr(nt.all, "runs/report-fixture/lenet5.mixq' is not found"), "notes:\n%s", nt.all);
    const char *b = NULL, *e = NULL;
    for (int m = 0; m < 4; m++) {
        CHECK(svg_nth(h, "plot pareto", m, &b, &e));
        if (!b || !e) break;
        CHECKF(count(b, e, "class=\"pt ") == 40, "pareto plot %d: %d points", m, count(b, e, "class=\"pt "));
        CHECK(count(b, e, "data-points=\"40\"") == 1);
        CHECK(count(b, e, "class=\"chosen ") == 1);      /* one chosen policy */
        CHECK(count(b, e, "class=\"front f0\"") == 1);   /* one agent: one front */
    }
    CHECK(svg_nth(h, "plot pareto", 0, &b, &e) && count(b, e, "class=\"bud\"") == 1); /* latency budget */
    CHECK(svg_nth(h, "plot pareto", 1, &b, &e) && count(b, e, "class=\"bud\"") == 0);
    for (int k = 0; k < 3; k++)
        CHECKF(svg_nth(h, "plot time", k, &b, &e) && count(b, e, "class=\"tp ") == 40, "time plot %d", k);
    CHECK(svg_nth(h, "plot bits", 0, &b, &e));
    CHECK(count(b, e, "class=\"bar-w\"") == 5 && count(b, e, "class=\"bar-a\"") == 5);
    CHECK(count(b, e, "class=\"macs\"") == 0); /* no model: no MACs */
    CHECK(count(h, NULL, "class=\"bar-lat") == 0 && strstr(h, "Not costed: the model is not loaded"));
    /* chosen: best_policy.json = episode 1's 8 6 2 5 8 / 8 4 4 5 8 */
    CHECK(strstr(h, "chosen policy of lenet5_haq: episode 1, 90.40 %") != NULL);
    CHECK(strstr(h, "conv2: weights 6 bits") && strstr(h, "fc1: activations 4 bits"));
    /* provenance: config and summary, and no command line recorded */
    CHECK(strstr(h, "<th>hw_fnv64</th><td>c2532fa98f6a95c4</td>") && strstr(h, "<th>final_test_accuracy</th><td>89.72</td>"));
    CHECK(strstr(h, "The command line was not recorded"));
    /* the same directory, the same bytes */
    char *h2 = report1(FIXTURE, tmp_path("fixture2.html"), NULL, &nt);
    CHECK(h2 && !strcmp(h, h2));
    free(h2);
    if (have_xmllint()) check_wellformed(out, h);
    free(h);
}

/* The fixture costed on its target with a model given: per-layer bars, MACs, memory-bound flags. */
static void test_report_fixture_costed(void) {
    if (!test_need_file(FIXTURE "/evals.jsonl") || !lenet5_file()[0]) return;
    notes nt;
    char *h = report1(FIXTURE, tmp_path("fixture_cost.html"), lenet5_file(), &nt);
    if (!h) return;
    CHECKF(nt.n == 0, "notes:\n%s", nt.all);
    const char *b = NULL, *e = NULL;
    CHECK(svg_nth(h, "plot bits", 0, &b, &e) && count(b, e, "class=\"macs\"") == 5);
    CHECK(svg_nth(h, "plot latency", 0, &b, &e) && count(b, e, "class=\"bar-lat") == 5);
    CHECK(count(b, e, "class=\"bar-lat mem\"") == count(b, e, "class=\"mb\""));
    CHECK(svg_nth(h, "plot energy", 0, &b, &e) && count(b, e, "class=\"bar-e ") == 15);
    /* the W8A8 absolute cost and the uniform references come from the model and target */
    CHECK(strstr(h, "W8A8 = ") && strstr(h, "class=\"uref\""));
    CHECK(strstr(h, "<td>conv2</td><td>conv5x5/1</td><td>6/4</td>") != NULL);
    free(h);
    /* a per-kernel array of the wrong length: the named layers are shown, nothing is costed */
    const char *dir = tmp_path("badkernels");
    CHECK(copy_dir(FIXTURE, dir) == 0);
    char p[1300];
    snprintf(p, sizeof p, "cd '%s' && sed -i 's/\"conv2\": {\"w_bits\": 6,/\"conv2\": {\"w_bits\": [6,2,6],/' "
             "best_policy.json && grep -q '6,2,6' best_policy.json", dir);
    CHECK(system(p) == 0);
    h = report1(dir, tmp_path("badkernels.html"), lenet5_file(), &nt);
    CHECKF(h && strstr(nt.all, "does not resolve on the model") && strstr(nt.all, "per-kernel bits, the layer has 16"),
           "notes:\n%s", nt.all);
    CHECK(in_svg(h, "plot bits", 0, "class=\"bar-w\"") == 5 && in_svg(h, "plot latency", 0, "class=\"bar-lat") == -1);
    free(h);
}

/* A synthetic run with the model: uniform candidates drawn as squares, collapsed ones on the
 * bottom edge, per-kernel bits as a heat map, the page well-formed. */
static void test_report_synthetic(void) {
    if (!lenet5_file()[0]) return;
    const char *dir = tmp_path("synth");
    int best = write_synth(dir, 300, lenet5_file(), 1);
    CHECK(best >= 0);
    notes nt;
    const char *out = tmp_path("synth.html");
    char *h = report1(dir, out, NULL, &nt);
    if (!h) return;
    CHECKF(nt.n == 2 && strstr(nt.all, "pareto.csv is missing") && strstr(nt.all, "summary.json is missing"), "notes:\n%s",
           nt.all);
    const char *b = NULL, *e = NULL;
    for (int m = 0; m < 4; m++) {
        CHECK(svg_nth(h, "plot pareto", m, &b, &e) && count(b, e, "class=\"pt ") == 300);
        CHECKF(count(b, e, "class=\"pt u ") == 12, "%d uniform", count(b, e, "class=\"pt u "));
        CHECKF(count(b, e, "class=\"pt lo ") == 8, "%d low", count(b, e, "class=\"pt lo "));
        CHECK(count(b, e, "class=\"chosen ") == 1);
    }
    char want[80];
    snprintf(want, sizeof want, "chosen policy of synth: episode %d,", best + 1);
    CHECK(strstr(h, want) != NULL);
    /* conv2's 16 kernels: 4 runs of equal bits (5 x w, 4 x 2, 4 x w, 3 x 3); the other rows one each */
    CHECK(svg_nth(h, "plot heat", 0, &b, &e));
    CHECKF(count(b, e, "class=\"hm\"") == 4 + 4, "%d heat cells", count(b, e, "class=\"hm\""));
    CHECK(strstr(h, "<td>k") != NULL); /* the cost table marks per-kernel layers */
    CHECK(svg_nth(h, "plot latency", 0, &b, &e) && count(b, e, "class=\"bar-lat") == 5);
    if (have_xmllint()) check_wellformed(out, h);
    free(h);
}

/* Run sh in dir (a copy of a run directory), then report it into page. */
static char *edited_report(const char *dir, const char *sh, const char *page, notes *nt) {
    char p[2600];
    snprintf(p, sizeof p, "cd '%s' && %s", dir, sh);
    CHECKF(system(p) == 0, "`%s` failed", p);
    return report1(dir, tmp_path(page), NULL, nt);
}

/* Torn, missing and malformed files: a page of what is there, with notes; never a failure. */
static void test_report_partial(void) {
    if (!test_need_file(FIXTURE "/evals.jsonl")) return;
    const char *dir = tmp_path("partial");
    notes nt;
    /* a torn last line (a killed or running search) */
    CHECK(copy_dir(FIXTURE, dir) == 0);
    char *h = edited_report(dir, "printf '{\"episode\": 41, \"w\": [8,6,2,5,8], \"a\": [8,4,' >> evals.jsonl", "torn.html", &nt);
    CHECK(strstr(nt.all, "no newline") && in_svg(h, "plot pareto", 0, "class=\"pt ") == 40);
    free(h);
    /* a bad line in the middle, a line of another length, a missing pareto.csv */
    h = edited_report(dir, "rm pareto.csv && sed -i '3s/.*/garbage {/' evals.jsonl && "
                      "sed -i '5s/\"w\": \\[8,/\"w\": [8,8,/' evals.jsonl", "bad.html", &nt);
    CHECKF(strstr(nt.all, "pareto.csv is missing") && strstr(nt.all, "1 line is not a scored candidate (first: line 3)") &&
           strstr(nt.all, "1 line has a different number of layers"), "notes:\n%s", nt.all);
    CHECK(in_svg(h, "plot pareto", 0, "class=\"pt ") == 38);
    free(h);
    /* evals.jsonl missing: pareto.csv's candidates (each once; it lists them per metric) */
    CHECK(copy_dir(FIXTURE, dir) == 0);
    h = edited_report(dir, "rm evals.jsonl", "csv.html", &nt);
    CHECK(strstr(nt.all, "evals.jsonl is missing: only the 12 Pareto candidates of pareto.csv are shown"));
    CHECK(in_svg(h, "plot pareto", 0, "class=\"pt ") == 12);
    free(h);
    /* malformed JSON everywhere, no best policy */
    h = edited_report(dir, "printf '{\"agent\": ' > config.json && printf 'x' > summary.json && "
                      "rm best_policy.json pareto.json && printf '\\001\\377<&>\\n' > evals.jsonl", "junk.html", &nt);
    CHECKF(strstr(nt.all, "config.json is not a JSON object") && strstr(nt.all, "summary.json is not a JSON object") &&
           strstr(nt.all, "line is not a scored candidate"), "notes:\n%s", nt.all);
    CHECK(h && strstr(h, "no scored candidates"));
    if (h && have_xmllint()) check_wellformed(tmp_path("junk.html"), h);
    free(h);
    /* an empty directory */
    h = edited_report(dir, "rm -f ./*", "empty.html", &nt);
    CHECK(h && strstr(nt.all, "config.json is missing") && strstr(nt.all, "evals.jsonl is missing: no candidates"));
    free(h);
    /* not a directory: an argument error, nothing written */
    const char *dirs[2] = {FIXTURE, "/nonexistent/run"};
    CHECK(mixq_report_write(dirs, 2, tmp_path("none.html"), NULL) == MIXQ_ERR_NOTFOUND);
    CHECK(strstr(mixq_last_error(), "'/nonexistent/run' is not a directory") != NULL);
    CHECK(access(tmp_path("none.html"), F_OK) != 0);
    CHECK(mixq_report_write(dirs, 0, tmp_path("none.html"), NULL) == MIXQ_ERR_ARG);
    CHECK(mixq_report_write(dirs, 1, "/nonexistent/dir/r.html", NULL) == MIXQ_ERR_IO);
}

/* Markup in names and values is escaped; invalid UTF-8 is replaced; several runs overlay with a
 * colour each and a legend. */
static void test_report_escaping_overlay(void) {
    if (!test_need_file(FIXTURE "/evals.jsonl")) return;
    const char *odd = tmp_path("a<b>&\"c'\xff");
    CHECK(copy_fixture_c(odd) == 0);
    char p[1400];
    snprintf(p, sizeof p, "%s/config.json", odd);
    char *conf = slurp(p, NULL), *ag = conf ? strstr(conf, "\"agent\": \"haq\"") : NULL;
    CHECK(ag != NULL);
    if (ag) { /* the agent's name, with markup and a control character */
        char *t = malloc(strlen(conf) + 64);
        if (t) {
            sprintf(t, "%.*s\"agent\": \"r<x>&amp;\\u0001\"%s", (int)(ag - conf), conf, ag + strlen("\"agent\": \"haq\""));
            CHECK(test_write_file(p, t, strlen(t)) == 0);
        }
        free(t);
    }
    free(conf);
    const char *dirs[2] = {FIXTURE, odd};
    const char *out = tmp_path("overlay.html");
    CHECK_OK(mixq_report_write(dirs, 2, out, NULL));
    char *h = slurp(out, NULL);
    if (!h) return;
    CHECK(strstr(h, "a&lt;b&gt;&amp;&quot;c&#39;\xEF\xBF\xBD") != NULL);
    CHECK(strstr(h, "r&lt;x&gt;&amp;amp;?") != NULL && strstr(h, "<x>") == NULL);
    const char *b = NULL, *e = NULL;
    CHECK(svg_nth(h, "plot pareto", 0, &b, &e) && count(b, e, "class=\"pt ") == 80);
    CHECK(count(b, e, "class=\"front f0\"") == 1 && count(b, e, "class=\"front f1\"") == 1);
    CHECK(count(b, e, "class=\"chosen s0\"") == 1 && count(b, e, "class=\"chosen s1\"") == 1);
    CHECK(svg_nth(h, "legend", 0, &b, &e) && strstr(b, "haq (1 run, 40 candidates)") && strstr(b, "r&lt;x&gt;"));
    if (have_xmllint()) check_wellformed(out, h);
    free(h);
}

/* 1000 candidates: generation time (printed; the README quotes it). */
static void test_report_1000(void) {
    if (!lenet5_file()[0]) return;
    const char *dir = tmp_path("synth1000");
    CHECK(write_synth(dir, 1000, lenet5_file(), 0) >= 0);
    const char *dirs[1] = {dir};
    double best = 1e9;
    for (int rep = 0; rep < 3; rep++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        CHECK_OK(mixq_report_write(dirs, 1, tmp_path("synth1000.html"), NULL));
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        if (s < best) best = s;
    }
    size_t len = 0;
    char *h = slurp(tmp_path("synth1000.html"), &len);
    const char *b = NULL, *e = NULL;
    CHECK(h && svg_nth(h, "plot pareto", 0, &b, &e) && count(b, e, "class=\"pt ") == 1000);
    printf("  1000 candidates: report in %.1f ms (best of 3, model and target loaded), %.0f KiB\n", best * 1e3,
           (double)len / 1024);
    CHECKF(best < 5, "%.2f s", best);
    free(h);
}

/* ------------------------------------------------------------------ a search writes its report */

typedef struct srch {
    int report_calls, last_episode;
    char msg[600];
} srch;

static void on_progress(const mixq_search_progress *p, void *user) {
    srch *u = user;
    if (!strcmp(p->phase, "report")) {
        u->report_calls++;
        snprintf(u->msg, sizeof u->msg, "%s", mixq_last_error());
    }
    if (!strcmp(p->phase, "search")) u->last_episode = p->episode;
}

static void test_report_from_search(void) {
    if (!lenet5_file()[0]) return;
    /* a tiny dataset: 96 random 28 x 28 images */
    const char *data = tmp_path("idx");
    CHECK(test_write_noise_idx(data, 96) == 0);
    mixq_search_config c;
    mixq_search_config_default(&c);
    CHECK(c.report_every == 10);
    c.agent = "random";
    c.hw = "bismo_edge";
    c.budget = "latency=0.9";
    c.episodes = 3;
    c.val_images = 32, c.eval_images = 32, c.calib_images = 16, c.batch = 16;
    c.final_epochs = 0;
    c.report_every = 2;
    const char *run = tmp_path("search_run");
    srch u;
    memset(&u, 0, sizeof u);
    mixq_search_result res;
    CHECK_OK(mixq_search(lenet5_file(), data, &c, run, 0, on_progress, &u, &res));
    CHECK(u.report_calls == 0 && u.last_episode == 3);
    char p[1300];
    snprintf(p, sizeof p, "%s/report.html", run);
    char *h = slurp(p, NULL);
    const char *b = NULL, *e = NULL;
    CHECK(h && svg_nth(h, "plot pareto", 0, &b, &e) && count(b, e, "class=\"pt ") == res.candidates);
    CHECK(h && strstr(h, "<th>final_test_accuracy</th>") != NULL); /* the end-of-search page has the summary */
    CHECK(h && svg_nth(h, "plot latency", 0, &b, &e) && count(b, e, "class=\"bar-lat") == 5);
    free(h);
    snprintf(p, sizeof p, "%s/report.html.tmp", run);
    CHECK(access(p, F_OK) != 0);
    /* a page that cannot be written: said once, the search finishes */
    const char *run2 = tmp_path("search_run2");
    snprintf(p, sizeof p, "mkdir -p '%s/report.html.tmp'", run2);
    CHECK(system(p) == 0);
    c.report_every = 1;
    memset(&u, 0, sizeof u);
    CHECK_OK(mixq_search(lenet5_file(), data, &c, run2, 0, on_progress, &u, &res));
    CHECKF(u.report_calls == 1 && strstr(u.msg, "report.html.tmp"), "%d calls: %s", u.report_calls, u.msg);
    /* never: no page */
    const char *run3 = tmp_path("search_run3");
    c.report_every = -1;
    CHECK_OK(mixq_search(lenet5_file(), data, &c, run3, 0, NULL, NULL, &res));
    snprintf(p, sizeof p, "%s/report.html", run3);
    CHECK(access(p, F_OK) != 0);
}

/* ------------------------------------------------------------------ the real browser */

typedef struct image {
    int w, h;
    unsigned char *rgb; /* w x h x 3 */
} image;

static uint32_t be32(const unsigned char *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

/* An 8-bit RGB or RGBA non-interlaced PNG (what chromium writes) -> RGB on white. */
static int png_read(const char *path, image *im, char *why, size_t nwhy) {
    size_t n = 0;
    unsigned char *b = (unsigned char *)slurp(path, &n);
    memset(im, 0, sizeof *im);
    if (!b || n < 8 || memcmp(b, "\x89PNG\r\n\x1a\n", 8)) {
        snprintf(why, nwhy, "not a PNG file");
        free(b);
        return 0;
    }
    unsigned char *idat = malloc(n);
    size_t ni = 0;
    int w = 0, h = 0, ct = -1, depth = 0, interlace = 0;
    for (size_t p = 8; idat && p + 12 <= n;) {
        uint32_t len = be32(b + p);
        if (len > n - p - 12) break;
        const unsigned char *t = b + p + 4;
        if (!memcmp(t, "IHDR", 4) && len >= 13)
            w = (int)be32(t + 4), h = (int)be32(t + 8), depth = t[12], ct = t[13], interlace = t[16];
        if (!memcmp(t, "IDAT", 4)) memcpy(idat + ni, t + 4, len), ni += len;
        p += 12 + len;
    }
    free(b);
    int bpp = ct == 6 ? 4 : ct == 2 ? 3 : 0;
    if (!idat || !bpp || depth != 8 || interlace || w < 1 || h < 1 || w > 20000 || h > 60000) {
        snprintf(why, nwhy, "unsupported PNG (%dx%d, colour type %d, depth %d, interlace %d)", w, h, ct, depth, interlace);
        free(idat);
        return 0;
    }
    const size_t stride = (size_t)w * bpp + 1;
    uLongf rl = (uLongf)(stride * (size_t)h);
    unsigned char *raw = malloc(rl), *px = malloc((size_t)w * h * bpp);
    if (!raw || !px || uncompress(raw, &rl, idat, ni) != Z_OK || rl != stride * (size_t)h) {
        snprintf(why, nwhy, "PNG data does not inflate");
        free(idat), free(raw), free(px);
        return 0;
    }
    free(idat);
    for (int y = 0; y < h; y++) {
        const unsigned char *r = raw + (size_t)y * stride;
        unsigned char *o = px + (size_t)y * w * bpp, *u = y ? o - (size_t)w * bpp : NULL;
        for (size_t i = 0; i < (size_t)w * bpp; i++) {
            int a = i >= (size_t)bpp ? o[i - bpp] : 0, up = u ? u[i] : 0, c = u && i >= (size_t)bpp ? u[i - bpp] : 0, x = r[1 + i];
            switch (r[0]) {
            case 1: x += a; break;
            case 2: x += up; break;
            case 3: x += (a + up) / 2; break;
            case 4: {
                int pp = a + up - c, pa = abs(pp - a), pb = abs(pp - up), pc = abs(pp - c);
                x += pa <= pb && pa <= pc ? a : pb <= pc ? up : c;
            } break;
            default: break;
            }
            o[i] = (unsigned char)x;
        }
    }
    free(raw);
    im->w = w, im->h = h;
    im->rgb = malloc((size_t)w * h * 3);
    for (size_t i = 0; im->rgb && i < (size_t)w * h; i++)
        for (int k = 0; k < 3; k++) {
            int v = px[i * bpp + k];
            if (bpp == 4) v = (v * px[i * 4 + 3] + 255 * (255 - px[i * 4 + 3])) / 255;
            im->rgb[i * 3 + k] = (unsigned char)v;
        }
    free(px);
    return im->rgb != NULL;
}

/* The screenshot holds a page, and every figure of it holds data: figures are found by their
 * 1-pixel #e2e2e2 border (top and bottom edges: long runs of that colour at the same x range),
 * and inside each, coloured pixels (channel spread > 60: points, lines, bars, not text or
 * grid) are counted. Returns the number of figures; *bad counts the empty ones. */
static int png_figures(const image *im, int *bad, double *ink, char *log, size_t nlog) {
    enum { MAXR = 4096 };
    static int ry[MAXR], rx0[MAXR], rx1[MAXR];
    int nr = 0;
    long inked = 0;
    for (int y = 0; y < im->h; y++) {
        const unsigned char *row = im->rgb + (size_t)y * im->w * 3;
        for (int x = 0; x < im->w; x++) inked += row[x * 3] < 245 || row[x * 3 + 1] < 245 || row[x * 3 + 2] < 245;
        for (int x = 0; x < im->w;) {
            int e = x;
            while (e < im->w && row[e * 3] == 0xe2 && row[e * 3 + 1] == 0xe2 && row[e * 3 + 2] == 0xe2) e++;
            if (e - x >= 300 && nr < MAXR) ry[nr] = y, rx0[nr] = x, rx1[nr] = e, nr++;
            x = e > x ? e : x + 1;
        }
    }
    *ink = (double)inked / ((double)im->w * im->h);
    int figs = 0;
    *bad = 0;
    size_t k = 0;
    static unsigned char used[MAXR];
    memset(used, 0, sizeof used);
    for (int i = 0; i < nr; i++) { /* pair each top edge with the next run at the same x range */
        if (used[i]) continue;
        int j = i + 1;
        while (j < nr && (used[j] || abs(rx0[j] - rx0[i]) > 2 || abs(rx1[j] - rx1[i]) > 2 || ry[j] <= ry[i] + 20)) j++;
        if (j >= nr) continue;
        used[i] = used[j] = 1;
        long colour = 0;
        for (int y = ry[i] + 1; y < ry[j]; y++)
            for (int x = rx0[i]; x < rx1[i]; x++) {
                const unsigned char *q = im->rgb + ((size_t)y * im->w + x) * 3;
                int mx = q[0] > q[1] ? q[0] : q[1], mn = q[0] < q[1] ? q[0] : q[1];
                mx = q[2] > mx ? q[2] : mx, mn = q[2] < mn ? q[2] : mn;
                colour += mx - mn > 60;
            }
        figs++;
        int empty = colour < 150;
        *bad += empty;
        if (k < nlog)
            k += (size_t)snprintf(log + k, nlog - k, "%s figure %d at (%d,%d) %dx%d: %ld coloured pixels\n",
                                  empty ? "EMPTY" : "ok", figs, rx0[i], ry[i], rx1[i] - rx0[i], ry[j] - ry[i], colour);
    }
    return figs;
}

/* The check bench/report_browser.sh runs on its screenshot; min_figs 0: any number >= 1. */
static int check_png(const char *path, int min_figs, char *log, size_t nlog) {
    image im;
    char why[200];
    if (!png_read(path, &im, why, sizeof why)) {
        snprintf(log, nlog, "%s: %s\n", path, why);
        return 0;
    }
    int bad = 0;
    double ink = 0;
    size_t k = (size_t)snprintf(log, nlog, "%s: %dx%d\n", path, im.w, im.h);
    int figs = png_figures(&im, &bad, &ink, log + k, nlog - k);
    k = strlen(log);
    snprintf(log + k, nlog - k, "%d figures (%d empty), %.1f %% of the pixels drawn\n", figs, bad, 100 * ink);
    free(im.rgb);
    return ink > 0.02 && figs >= (min_figs > 0 ? min_figs : 1) && bad == 0;
}

static int chromium_shot(const char *html, const char *png, int height, char *out, size_t nout) {
    char cmd[4000];
    snprintf(cmd, sizeof cmd,
             "d=$(mktemp -d) && timeout 180 " CHROMIUM " --headless --no-sandbox --disable-gpu --disable-quic "
             "--no-first-run --disable-background-networking --disable-component-update --disable-sync "
             "--hide-scrollbars --user-data-dir=\"$d\" --screenshot='%s' --window-size=1400,%d 'file://%s' 2>&1; "
             "rc=$?; rm -rf \"$d\"; exit $rc", png, height, html);
    return run_sh(cmd, out, nout);
}

static void test_report_browser(void) {
    if (access(CHROMIUM, X_OK) != 0) { /* registered only when present, or when required */
        CHECKF(0, "%s is missing (MIXQ_REPORT_BROWSER=1 requires it; scripts/deps.sh --browser installs it)", CHROMIUM);
        return;
    }
    if (!lenet5_file()[0]) return;
    const char *dir = tmp_path("browser_run");
    CHECK(write_synth(dir, 400, lenet5_file(), 1) >= 0);
    const char *html = tmp_path("browser.html"), *png = tmp_path("browser.png");
    notes nt;
    char *h = report1(dir, html, NULL, &nt);
    free(h);
    char out[8192];
    int rc = chromium_shot(html, png, 4200, out, sizeof out);
    CHECKF(rc == 0 && access(png, R_OK) == 0, "chromium exited %d:\n%.3000s", rc, out);
    char log[8192];
    /* 4 Pareto plots, 4 over time, bits (with the heat map), latency and energy */
    int ok = check_png(png, 11, log, sizeof log);
    printf("%s", log);
    CHECKF(ok, "the screenshot fails the check:\n%s", log);
}

/* The last row of a screenshot that is not white (where the page ends), -1 if none. */
static int png_page_end(const image *im) {
    for (int y = im->h - 1; y >= 0; y--)
        for (int x = 0; x < im->w; x++) {
            const unsigned char *q = im->rgb + ((size_t)y * im->w + x) * 3;
            if (q[0] < 240 || q[1] < 240 || q[2] < 240) return y;
        }
    return -1;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--page-end")) {
        image im;
        char why[200];
        if (!png_read(argv[2], &im, why, sizeof why)) {
            fprintf(stderr, "%s: %s\n", argv[2], why);
            return 1;
        }
        printf("%d\n", png_page_end(&im));
        free(im.rgb);
        return 0;
    }
    if (argc == 3 && !strcmp(argv[1], "--check-png")) {
        char log[16384];
        int ok = check_png(argv[2], 0, log, sizeof log);
        fputs(log, stdout);
        return ok ? 0 : 1;
    }
    TEST_RUN(test_report_fixture);
    TEST_RUN(test_report_fixture_costed);
    TEST_RUN(test_report_synthetic);
    TEST_RUN(test_report_partial);
    TEST_RUN(test_report_escaping_overlay);
    TEST_RUN(test_report_1000);
    TEST_RUN(test_report_from_search);
    const char *req = getenv("MIXQ_REPORT_BROWSER");
    if (access(CHROMIUM, X_OK) == 0 || (req && !strcmp(req, "1"))) TEST_RUN(test_report_browser);
    else printf("test_report_browser: not run (no %s; scripts/deps.sh --browser installs it, make bench-report "
                "requires it)\n", CHROMIUM);
    return test_summary();
}

// Reports: every figure script and `profdit report` on the file of a real short run (sprites-tiny, 8 steps,
// 1 prompt, none + step_skip + profiling_dit, video), and on edited copies of it made with h5py: with
// profiling data (R_attn, /plan), without optional data, an interrupted sweep, a newer format version.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include <gtest/gtest.h>

#include "test_util.h"

using namespace profdit;
namespace fs = std::filesystem;

namespace {

std::string reports_dir() { return fs::canonical(std::string(PROFDIT_TEST_DATA) + "/../../reports").string(); }

std::string python() {
    static const std::string py = test::python_with("matplotlib, h5py");
    return py.empty() ? "python3" : py;
}

std::string slurp(const std::string& path) {
    std::ifstream     f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

void write(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Runs a shell command; stdout and stderr land in `out` (together).
int shell(const std::string& cmd, std::string* out = nullptr) {
    static int  n   = 0;
    const auto  log = (fs::temp_directory_path() / ("profdit-report-sh-" + std::to_string(::getpid()) + "-" + std::to_string(n++))).string();
    const int   rc  = std::system((cmd + " >" + log + " 2>&1").c_str());
    if (out) *out = slurp(log);
    fs::remove(log);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

const char* kEdit = R"(import shutil, sys
import h5py, numpy as np
src, dst, kind = sys.argv[1:4]
shutil.copyfile(src, dst)
with h5py.File(dst, "r+") as f:
    groups = list(f["runs"].values()) + list(f["references"].values())
    if kind == "profile":
        base = np.array([0.7, 0.6, 0.15, 0.1, 0.2, 0.8])
        assert all("profile/r_attn" in g for g in f["references"].values())  # measured by the run
        p = f.create_group("plan")
        p.attrs["background_blocks"] = np.array([2, 3, 4], dtype=np.int64)
        p.attrs["tau"] = 0.3
        p["r_attn"] = base
    elif kind == "bare":
        for g in groups:
            for d in ("video", "similarity", "profile"):
                if d in g:
                    del g[d]
    elif kind == "interrupted":
        for name, status in (("step_skip", "running"), ("profiling_dit", "failed: out of memory")):
            rid = next(k for k in f["runs"] if k.startswith(name))
            del f["runs"][rid]
            f["runs"].create_group(rid).attrs["status"] = np.bytes_(status)
    elif kind == "newer":
        f.attrs["format_version"] = np.int64(99)
)";

std::string fixture_dir() { return (fs::temp_directory_path() / ("profdit-report-fixture-" + std::to_string(::getpid()))).string(); }

// The real short run, once per process. A folder left by an earlier process with the same pid (pids are
// reused across test runs) is removed first: the run refuses to overwrite an existing output.
const std::string& fixture() {
    static const std::string path = [] {
        const auto dir = fixture_dir();
        fs::remove_all(dir);
        fs::create_directories(dir);
        write(dir + "/tiny.yaml",
              "name: tiny\n"
              "model: {preset: sprites-tiny, threads: 1}\n"
              "sampling: {solver: unipc, steps: 8, shift: 3.0, guide: 4.0}\n"
              "prompts: [a red circle moving left over blue stripes]\n"
              "seeds: [0]\n"
              "policies:\n"
              "  - none\n"
              "  - {name: step_skip, interval: 2, warmup: 2}\n"
              "  - {name: profiling_dit, background_blocks: [2, 3, 4], warmup: 2, schedule: {type: fixed, interval: 3}}\n"
              "metrics: [psnr, ssim, lpips_proxy]\n"
              "timing: {warmup_runs: 0, repeats: 1}\n"
              "video: true\n"
              "profile: {attention: true}\n"
              "output: " + dir + "/tiny.h5\n");
        write(dir + "/edit.py", kEdit);
        const auto r = test::run_profdit("run " + dir + "/tiny.yaml --quiet");
        if (r.code != 0) throw std::runtime_error("fixture run failed: " + r.err);
        return dir + "/tiny.h5";
    }();
    return path;
}

// A copy of the fixture edited by edit.py (profile | bare | interrupted | newer), once per kind.
std::string variant(const std::string& kind) {
    const auto src = fixture();
    const auto dst = fixture_dir() + "/" + kind + ".h5";
    if (!fs::exists(dst)) {
        std::string out;
        if (shell(python() + " " + fixture_dir() + "/edit.py " + src + " " + dst + " " + kind, &out) != 0)
            throw std::runtime_error("edit.py " + kind + " failed: " + out);
    }
    return dst;
}

// `profdit report` of the "profile" variant (every figure has its data), once per process.
const std::string& full_report() {
    static const std::string dir = [] {
        const auto out = fixture_dir() + "/profile_report";
        const auto r   = test::run_profdit("report " + variant("profile") + " --out " + out);
        if (r.code != 0) throw std::runtime_error("profdit report failed: " + r.err);
        if (!contains(r.out, out + "/report.md\n") || !contains(r.out, out + "/report.html\n"))
            throw std::runtime_error("profdit report did not print where the report is: " + r.out);
        return out;
    }();
    return dir;
}

// Width and height from a PNG's IHDR chunk; {0, 0} when the file is not a PNG.
std::pair<int, int> png_size(const std::string& path) {
    const auto s = slurp(path);
    if (s.size() < 24 || s.compare(0, 8, "\x89PNG\r\n\x1a\n") != 0) return {0, 0};
    auto be32 = [&](size_t o) { return int((uint8_t(s[o]) << 24) | (uint8_t(s[o + 1]) << 16) | (uint8_t(s[o + 2]) << 8) | uint8_t(s[o + 3])); };
    return {be32(16), be32(20)};
}

const std::vector<std::string> kFigures = {"attention", "similarity", "pareto", "cache_maps", "qualitative", "latency"};
// The one figure the fixture has no data for: it needs budget-matched settings (reports/test_leaderboard.py
// draws it on a crafted file).
const std::string kLeaderboardScript  = "fig_leaderboard.py";
const std::string kLeaderboardSkipped = "no budget-matched setting";

}  // namespace

// The Pareto figure's error bars span the runs' min-max and so stay inside SSIM <= 1 and LPIPS-proxy >= 0
// (reports/test_fig_pareto.py; a standard-deviation bar ran past both).
TEST(ReportScripts, ParetoErrorBarsSpanMinToMax) {
    std::string log;
    EXPECT_EQ(shell(python() + " " + reports_dir() + "/test_fig_pareto.py", &log), 0) << log;
}

TEST(ReportScripts, EachFigureScriptWritesAReadablePngAndAPdf) {
    const auto file = variant("profile");
    const auto out  = test::temp_dir();
    std::vector<std::string> scripts;
    for (const auto& e : fs::directory_iterator(reports_dir()))
        if (e.path().filename().string().rfind("fig_", 0) == 0 && e.path().extension() == ".py") scripts.push_back(e.path().string());
    std::sort(scripts.begin(), scripts.end());
    ASSERT_EQ(scripts.size(), kFigures.size() + 1);
    for (const auto& s : scripts) {
        std::string log;
        EXPECT_EQ(shell(python() + " " + s + " " + file + " --out " + out, &log), 0) << s << "\n" << log;
        if (fs::path(s).filename() == kLeaderboardScript)
            EXPECT_TRUE(contains(log, "skipped: " + kLeaderboardSkipped)) << s << "\n" << log;
        else
            EXPECT_TRUE(contains(log, out + "/")) << s << " printed no figure path:\n" << log;
    }
    for (const auto& name : kFigures) {
        const auto [w, h] = png_size(out + "/" + name + ".png");
        EXPECT_GE(w, 600) << name;
        EXPECT_GE(h, 300) << name;
        EXPECT_GT(fs::exists(out + "/" + name + ".pdf") ? fs::file_size(out + "/" + name + ".pdf") : 0u, 1000u) << name;
    }
}

TEST(ReportScripts, AttentionFigureSkipsWithoutProfilingData) {
    const auto  out = test::temp_dir();
    std::string log;
    EXPECT_EQ(shell(python() + " " + reports_dir() + "/fig_attention.py " + variant("bare") + " --out " + out, &log), 0) << log;
    EXPECT_TRUE(contains(log, "skipped: no profile/r_attn in the file")) << log;
    EXPECT_FALSE(fs::exists(out + "/attention.png"));
}

TEST(Report, WritesMarkdownAndHtmlWithEveryFigureAndVideo) {
    const auto& out = full_report();
    const auto  md  = slurp(out + "/report.md");
    for (const auto& name : kFigures) {
        EXPECT_TRUE(contains(md, "](figures/" + name + ".png)")) << name;
        EXPECT_GT(png_size(out + "/figures/" + name + ".png").first, 0) << name;
    }
    EXPECT_TRUE(contains(md, "*Skipped: " + kLeaderboardSkipped)) << md;
    EXPECT_EQ(md.find("Skipped"), md.rfind("Skipped")) << md;  // no other figure is skipped
    EXPECT_FALSE(contains(md, "## Leaderboard")) << md;  // no budget-matched setting
    EXPECT_FALSE(contains(md, "Failed")) << md;
    EXPECT_TRUE(contains(md, "| policy | runs | computed | ideal x | measured x | measured range |")) << md;
    EXPECT_TRUE(contains(md, "| step_skip-i2-w2-f1-residual | 1 | 0.750 |")) << md;
    for (const auto& v : {"reference_0_0", "step_skip-i2-w2-f1-residual_p0_s0", "profiling_dit-inline-2.3.4-w2-fixed3_p0_s0"}) {
        const auto stem = out + "/videos/" + std::string(v);
        const auto preview = slurp(fs::exists(stem + ".mp4") ? stem + ".mp4" : stem + ".avi");
        EXPECT_TRUE(preview.size() > 1000 && (preview.compare(4, 4, "ftyp") == 0 || preview.compare(0, 4, "RIFF") == 0)) << v;
        EXPECT_GT(png_size(stem + ".png").first, 0) << v;
        EXPECT_TRUE(contains(md, "](videos/" + std::string(v) + ".png)")) << v;
    }
    EXPECT_FALSE(fs::exists(out + "/videos/none_p0_s0.png"));  // the none run is its reference
    const auto html = slurp(out + "/report.html");
    EXPECT_FALSE(contains(html, "src=\"figures/"));
    EXPECT_TRUE(contains(html, "<img src=\"data:image/png;base64,"));
}

TEST(Report, RegeneratingGivesTheSameReport) {
    const auto& a   = full_report();
    const auto  dir = test::temp_dir();
    ASSERT_EQ(test::run_profdit("report " + variant("profile") + " --out " + dir).code, 0);
    EXPECT_EQ(slurp(a + "/report.md"), slurp(dir + "/report.md"));
    EXPECT_EQ(slurp(a + "/report.html"), slurp(dir + "/report.html"));  // figures included
    EXPECT_FALSE(std::regex_search(slurp(dir + "/report.md"), std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d)")));
}

TEST(Report, MissingOptionalDataSkipsFiguresWithANote) {
    const auto out = test::temp_dir();
    const auto r   = test::run_profdit("report " + variant("bare") + " --out " + out);
    ASSERT_EQ(r.code, 0) << r.err;
    const auto md = slurp(out + "/report.md");
    EXPECT_TRUE(contains(md, "*Skipped: no profile/r_attn in the file")) << md;
    EXPECT_TRUE(contains(md, "*Skipped: no noise_pred_rel_l1 in the file")) << md;
    EXPECT_TRUE(contains(md, "*Skipped: no stored video")) << md;
    for (const auto& name : {"pareto", "cache_maps", "latency"}) EXPECT_TRUE(contains(md, "](figures/" + std::string(name) + ".png)")) << name;
}

TEST(Report, InterruptedSweepListsUnfinishedRunsButDoesNotPlotThem) {
    const auto out = test::temp_dir();
    const auto r   = test::run_profdit("report " + variant("interrupted") + " --out " + out);
    ASSERT_EQ(r.code, 0) << r.err;
    const auto md = slurp(out + "/report.md");
    EXPECT_TRUE(contains(md, "| step_skip-i2-w2-f1-residual_p0_s0 | step_skip | 0 | 0 | running | - |")) << md;
    EXPECT_TRUE(contains(md, "| failed: out of memory | - |")) << md;
    EXPECT_TRUE(contains(md, "| none | 1 |")) << md;
    EXPECT_FALSE(contains(md, "| step_skip-i2-w2-f1-residual | ")) << md;  // no row of means
    EXPECT_TRUE(contains(md, "2 group(s) are not done")) << md;
    EXPECT_TRUE(contains(md, "*Skipped: no finished cached run")) << md;  // pareto: only `none` is done
    EXPECT_FALSE(fs::exists(out + "/videos/step_skip-i2-w2-f1-residual_p0_s0.png"));
}

TEST(Report, WorksOnAMergedFile) {
    const auto dir = test::temp_dir();
    fs::copy_file(fixture(), dir + "/again.h5");  // two inputs holding the same groups: taken from the first
    ASSERT_EQ(test::run_profdit("merge " + dir + "/merged.h5 " + fixture() + " " + dir + "/again.h5").code, 0);
    const auto r = test::run_profdit("report " + dir + "/merged.h5");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_TRUE(contains(r.out, dir + "/merged_report/report.html")) << r.out;
    const auto md = slurp(dir + "/merged_report/report.md");
    EXPECT_TRUE(contains(md, "| merged from | tiny.h5, again.h5 |")) << md;
    EXPECT_TRUE(contains(md, "](figures/pareto.png)")) << md;
}

TEST(Report, BadInputIsOneLineNamingTheFileExitTwo) {
    const auto dir = test::temp_dir();
    write(dir + "/notes.h5", "not an HDF5 file\n");
    for (const auto& f : {dir + "/missing.h5", dir + "/notes.h5", variant("newer")}) {
        const auto r = test::run_profdit("report " + f + " --out " + dir + "/out");
        EXPECT_EQ(r.code, 2) << f << ": " << r.err;
        EXPECT_TRUE(contains(r.err, f)) << r.err;
        EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    }
    EXPECT_TRUE(contains(test::run_profdit("report " + variant("newer")).err, "format version 99"));
}

// The HTML report in headless Chromium: a script injected into a copy counts the images that did not decode
// (complete, natural size > 0, a data: URI) and load errors; a copy with one damaged image proves the check fails.
TEST(ReportHtml, EveryImageLoadsInHeadlessChromium) {
    std::string browser;
    for (const char* b : {"chromium", "chromium-browser", "google-chrome"})
        if (shell(std::string("command -v ") + b) == 0) {
            browser = b;
            break;
        }
    if (browser.empty()) GTEST_SKIP() << "chromium is not installed (apt-get install chromium): the HTML report is not checked in a browser";
    const auto dir  = test::temp_dir();
    const auto html = slurp(full_report() + "/report.html");
    size_t     imgs = 0;
    for (size_t p = html.find("<img "); p != std::string::npos; p = html.find("<img ", p + 1)) ++imgs;
    ASSERT_GE(imgs, kFigures.size() + 3);  // the figures and the frame strips
    const std::string head = "<head><script>window.errs=0;window.addEventListener('error',function(){window.errs++;},true);</script>";
    const std::string tail =
        "<script>window.addEventListener('load',function(){var n=0,bad=0;for(var i of document.images){n++;"
        "if(!(i.complete&&i.naturalWidth>0&&i.naturalHeight>0&&i.src.indexOf('data:image/png;base64,')==0))bad++;}"
        "var d=document.createElement('div');d.id='imgcheck';d.textContent='images='+n+' broken='+bad+' errors='+window.errs;"
        "document.body.appendChild(d);});</script></body>";
    auto check = [&](std::string page, const std::string& name) {
        page.replace(page.find("<head>"), 6, head);
        page.replace(page.rfind("</body>"), 7, tail);
        write(dir + "/" + name, page);
        std::string dom;
        shell("timeout 120 " + browser + " --headless --no-sandbox --disable-gpu --virtual-time-budget=10000 --dump-dom file://" + dir + "/" +
                  name + " 2>/dev/null",
              &dom);
        std::smatch m;
        return std::regex_search(dom, m, std::regex("images=\\d+ broken=\\d+ errors=\\d+")) ? m.str() : "(no result: " + dom.substr(0, 300) + ")";
    };
    EXPECT_EQ(check(html, "check.html"), "images=" + std::to_string(imgs) + " broken=0 errors=0");
    auto damaged = html;
    const auto p = damaged.find("base64,") + 7;
    damaged.replace(p, 200, std::string(200, 'A'));  // the PNG signature and header are gone
    EXPECT_EQ(check(damaged, "damaged.html"), "images=" + std::to_string(imgs) + " broken=1 errors=1");
}

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>

#ifdef PROFDIT_HAVE_OPENCV
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#endif

#include "cli/commands.h"
#include "common/error.h"
#include "store/store.h"

namespace profdit::cli {

namespace fs = std::filesystem;

namespace {

struct ReportOptions {
    std::string file, out;
    bool        no_video = false;
};

std::string env_or(const char* name, const std::string& fallback) {
    const char* v = std::getenv(name);
    return v && *v ? v : fallback;
}

// The figure scripts: $PROFDIT_REPORTS, else reports/ of the source tree this profdit was built from.
std::string reports_dir() { return env_or("PROFDIT_REPORTS", PROFDIT_SOURCE_REPORTS_DIR); }

// Runs args[0] (searched in PATH) and returns its exit status; `quiet`: its output goes to /dev/null.
int run_process(const std::vector<std::string>& args, bool quiet = false) {
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    std::cout.flush();
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("cannot start " + args[0]);
    if (pid == 0) {
        if (quiet) {
            const int null = ::open("/dev/null", O_WRONLY);
            ::dup2(null, 1), ::dup2(null, 2);
        }
        ::execvp(argv[0], argv.data());
        if (!quiet) std::cerr << "profdit report: cannot run " << args[0] << "\n";
        ::_exit(127);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// The Python for the figure scripts: $PROFDIT_PYTHON, else the first of Debian's python3 (where scripts/setup
// installs matplotlib and h5py) and the PATH's python3 that imports both (a GPU image's /usr/bin/python3 may
// lack them while its PATH's python3 has them).
std::string python() {
    if (const char* v = std::getenv("PROFDIT_PYTHON"); v && *v) return v;
    for (const std::string py : {"/usr/bin/python3", "python3"})
        if (run_process({py, "-c", "import matplotlib, h5py"}, true) == 0) return py;
    throw std::runtime_error("the report scripts need Python 3 with matplotlib and h5py, which neither /usr/bin/python3 nor the "
                             "PATH's python3 has (Debian: apt-get install python3-matplotlib python3-h5py, as scripts/setup "
                             "does; or set PROFDIT_PYTHON)");
}

#ifdef PROFDIT_HAVE_OPENCV
// uint8 [F, H, W, 3] RGB -> BGR frames scaled to about `height` pixels (nearest when enlarging).
std::vector<cv::Mat> bgr_frames(const torch::Tensor& video, int height) {
    const int F = int(video.size(0)), H = int(video.size(1)), W = int(video.size(2));
    const double scale = H < height ? std::max(1, height / H) : double(height) / H;
    const auto   u8    = video.contiguous();
    std::vector<cv::Mat> out;
    for (int f = 0; f < F; ++f) {
        cv::Mat rgb(H, W, CV_8UC3, u8[f].data_ptr<uint8_t>()), bgr, sized;
        cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
        cv::resize(bgr, sized, cv::Size(), scale, scale, scale >= 1 ? cv::INTER_NEAREST : cv::INTER_AREA);
        out.push_back(sized);
    }
    return out;
}

// DIR/NAME.mp4 (mp4v), or DIR/NAME.avi (MJPG) where this OpenCV cannot write MP4; "" when neither works.
std::string write_preview(const std::vector<cv::Mat>& frames, const fs::path& dir, const std::string& name) {
    const cv::Size size = frames[0].size();
    for (const auto& [ext, fourcc] : {std::pair{".mp4", cv::VideoWriter::fourcc('m', 'p', '4', 'v')},
                                      std::pair{".avi", cv::VideoWriter::fourcc('M', 'J', 'P', 'G')}}) {
        const auto path = (dir / (name + ext)).string();
        {
            cv::VideoWriter w(path, fourcc, 8.0, size);
            if (!w.isOpened()) continue;
            for (const auto& f : frames) w.write(f);
        }
        if (fs::exists(path) && fs::file_size(path) > 0) return path;
        fs::remove(path);
    }
    return "";
}

// Up to 16 evenly spaced frames side by side, 2 px white gaps.
void write_strip(const std::vector<cv::Mat>& frames, const std::string& path) {
    const int n = std::min<int>(16, int(frames.size())), gap = 2, w = frames[0].cols, h = frames[0].rows;
    cv::Mat canvas(h, n * w + (n - 1) * gap, CV_8UC3, cv::Scalar(255, 255, 255));
    for (int i = 0; i < n; ++i) {
        const int f = n == 1 ? 0 : int(std::lround(double(i) * (frames.size() - 1) / (n - 1)));
        frames[size_t(f)].copyTo(canvas(cv::Rect(i * (w + gap), 0, w, h)));
    }
    if (!cv::imwrite(path, canvas)) throw std::runtime_error(path + ": cannot write PNG");
}

// Previews and frame strips of every done reference and run with stored frames (a `none` run is its reference).
void export_videos(const store::Store& st, const fs::path& dir) {
    std::vector<std::pair<std::string, std::string>> todo;  // group, file name stem
    for (const auto& g : st.groups("/references")) todo.push_back({"/references/" + g, "reference_" + g});
    for (const auto& g : st.groups("/runs")) todo.push_back({"/runs/" + g, g});
    size_t written = 0;
    for (const auto& [group, name] : todo) {
        if (st.status(group) != "done") continue;
        const auto ds = st.datasets(group);
        if (std::find(ds.begin(), ds.end(), "video") == ds.end()) continue;
        if (group.rfind("/runs/", 0) == 0 && st.read_str_attr(group, "policy") == "none") continue;
        const auto video = st.read_dataset(group + "/video");
        if (video.dim() != 4 || video.size(3) != 3 || video.scalar_type() != torch::kUInt8 || video.size(0) == 0) {
            std::cerr << "profdit report: " << st.path() << ": " << group << "/video is not uint8 [F,H,W,3]; not exported\n";
            continue;
        }
        fs::create_directories(dir);
        const auto preview = write_preview(bgr_frames(video, 256), dir, name);
        if (preview.empty()) std::cerr << "profdit report: this OpenCV can write neither MP4 nor AVI; no preview of " << group << "\n";
        write_strip(bgr_frames(video, 96), (dir / (name + ".png")).string());
        ++written;
    }
    if (written) std::cerr << "profdit report: " << written << " video(s) -> " << dir.string() << "\n";
}
#endif

}  // namespace

Command add_report(CLI::App& app) {
    auto  o   = std::make_shared<ReportOptions>();
    auto* cmd = app.add_subcommand("report", "figures, tables, report.md and a self-contained report.html from a result file");
    cmd->add_option("file", o->file, "result file (HDF5) written by profdit run or merge")->required();
    cmd->add_option("--out", o->out, "report folder (default: FILE without .h5, plus _report)");
    cmd->add_flag("--no-video", o->no_video, "skip the MP4/AVI previews and frame strips");
    return {cmd, [o] {
                const auto st  = store::Store::open_existing(o->file);  // InputError: missing, not HDF5, newer format
                fs::path   out = o->out;
                if (out.empty()) {
                    out = o->file;
                    out = out.parent_path() / (out.stem().string() + "_report");
                }
                std::error_code ec;
                fs::create_directories(out, ec);
                if (ec || !fs::is_directory(out)) input_error(out.string() + ": cannot create the report folder (" + ec.message() + ")");
                const auto scripts = fs::path(reports_dir()) / "report.py";
                if (!fs::exists(scripts))
                    input_error(scripts.string() + " not found: set PROFDIT_REPORTS to the reports/ folder of the profdit sources");
#ifdef PROFDIT_HAVE_OPENCV
                if (!o->no_video) export_videos(st, out / "videos");
#else
                if (!o->no_video) std::cerr << "profdit report: built without OpenCV: no video previews\n";
#endif
                const auto py = python();
                const int  rc = run_process({py, scripts.string(), o->file, "--out", out.string()});
                if (rc == 2) throw InputError(o->file + ": the report scripts refused the file (see above)");
                if (rc != 0) throw std::runtime_error("the report scripts failed (" + py + " exit " + std::to_string(rc) + ", see above)");
                return 0;
            }};
}

}  // namespace profdit::cli

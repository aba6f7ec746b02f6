#include "train/loss_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/error.h"

namespace fs = std::filesystem;

namespace serpent {

namespace {

constexpr double kWidth = 720, kHeight = 420;
constexpr double kLeft = 70, kRight = 20, kTop = 40, kBottom = 55;  // margins around the plot area
constexpr size_t kMaxPoints = 2000;                                 // longer curves are thinned by averaging neighbours

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// A tick label: the fewest decimals that tell the ticks apart.
std::string tick_label(double v, double step) {
  const int decimals = std::max(0, int(-std::floor(std::log10(step) + 1e-9)));
  if (std::fabs(v) >= 1e6) return fmt("%.3g", v);
  char f[16];
  std::snprintf(f, sizeof f, "%%.%df", decimals);
  return fmt(f, std::fabs(v) < step * 1e-9 ? 0.0 : v);
}

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '&')
      out += "&amp;";
    else if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else if (c == '"')
      out += "&quot;";
    else
      out += c;
  }
  return out;
}

struct Point {
  double x, y;
};

// At most kMaxPoints points, each the mean of a run of consecutive ones.
std::vector<Point> thin(const std::vector<Point>& pts) {
  if (pts.size() <= kMaxPoints) return pts;
  const size_t group = (pts.size() + kMaxPoints - 1) / kMaxPoints;
  std::vector<Point> out;
  for (size_t i = 0; i < pts.size(); i += group) {
    const size_t end = std::min(pts.size(), i + group);
    Point m{0, 0};
    for (size_t j = i; j < end; ++j) m.x += pts[j].x, m.y += pts[j].y;
    out.push_back({m.x / double(end - i), m.y / double(end - i)});
  }
  return out;
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int target) {
  SERPENT_CHECK(std::isfinite(lo) && std::isfinite(hi) && lo <= hi && target >= 2, "nice_ticks: bad range [", lo, ", ",
                hi, "]");
  if (hi - lo < 1e-12 * std::max(1.0, std::fabs(hi))) {
    const double pad = std::max(std::fabs(hi) * 0.05, 0.5);
    lo -= pad, hi += pad;
  }
  // The step is m * 10^e with m in {1, 2, 5}; ticks are computed as integers times m, then
  // scaled by 10^e in one correctly rounded operation, so 2.4 prints as 2.4 and not 2.4000000000000004.
  const double rough = (hi - lo) / (target - 1);
  int e = int(std::floor(std::log10(rough)));
  int64_t m = 10;
  for (int64_t c : {1, 2, 5, 10})
    if (double(c) * std::pow(10.0, e) >= rough) {
      m = c;
      break;
    }
  if (m == 10) m = 1, ++e;
  const double p10 = std::pow(10.0, std::abs(e));
  auto value = [&](int64_t i) { return e < 0 ? double(i * m) / p10 : double(i * m) * p10; };
  std::vector<double> ticks;
  int64_t i = int64_t(std::floor(lo / value(1) + 1e-9));
  do {
    ticks.push_back(value(i++));
  } while (ticks.back() < hi - value(1) * 1e-9);
  return ticks;
}

std::string loss_curve_svg(const std::vector<MetricsRecord>& records, const std::string& title) {
  std::vector<Point> train, val;
  for (const MetricsRecord& r : records) {
    if (std::isfinite(r.loss)) train.push_back({double(r.step), r.loss});
    if (r.val_loss && std::isfinite(*r.val_loss)) val.push_back({double(r.step), *r.val_loss});
  }
  train = thin(train);

  double x_lo = 0, x_hi = 1, y_lo = INFINITY, y_hi = -INFINITY;
  for (const auto* curve : {&train, &val})
    for (const Point& p : *curve) {
      x_hi = std::max(x_hi, p.x);
      y_lo = std::min(y_lo, p.y);
      y_hi = std::max(y_hi, p.y);
    }
  if (!std::isfinite(y_lo)) y_lo = 0, y_hi = 1;
  const std::vector<double> xt = nice_ticks(x_lo, x_hi), yt = nice_ticks(y_lo, y_hi);
  x_lo = xt.front(), x_hi = xt.back(), y_lo = yt.front(), y_hi = yt.back();

  const double pw = kWidth - kLeft - kRight, ph = kHeight - kTop - kBottom;
  auto X = [&](double x) { return kLeft + (x - x_lo) / (x_hi - x_lo) * pw; };
  auto Y = [&](double y) { return kTop + (1 - (y - y_lo) / (y_hi - y_lo)) * ph; };

  std::string s;
  s += str_cat("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"", kWidth, "\" height=\"", kHeight,
               "\" viewBox=\"0 0 ", kWidth, " ", kHeight, "\" font-family=\"sans-serif\" font-size=\"12\">\n");
  s += str_cat("<rect width=\"", kWidth, "\" height=\"", kHeight, "\" fill=\"white\"/>\n");
  s += str_cat("<text x=\"", kWidth / 2, "\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">", escape(title),
               "</text>\n");
  // Grid, ticks and labels.
  for (double t : xt) {
    const std::string x = fmt("%.1f", X(t));
    s += str_cat("<line x1=\"", x, "\" y1=\"", kTop, "\" x2=\"", x, "\" y2=\"", kTop + ph, "\" stroke=\"#e5e5e5\"/>\n");
    s += str_cat("<line x1=\"", x, "\" y1=\"", kTop + ph, "\" x2=\"", x, "\" y2=\"", kTop + ph + 5,
                 "\" stroke=\"black\"/>\n");
    s += str_cat("<text x=\"", x, "\" y=\"", kTop + ph + 19, "\" text-anchor=\"middle\">",
                 tick_label(t, xt.size() > 1 ? xt[1] - xt[0] : 1), "</text>\n");
  }
  for (double t : yt) {
    const std::string y = fmt("%.1f", Y(t));
    s += str_cat("<line x1=\"", kLeft, "\" y1=\"", y, "\" x2=\"", kLeft + pw, "\" y2=\"", y,
                 "\" stroke=\"#e5e5e5\"/>\n");
    s += str_cat("<line x1=\"", kLeft - 5, "\" y1=\"", y, "\" x2=\"", kLeft, "\" y2=\"", y, "\" stroke=\"black\"/>\n");
    s += str_cat("<text x=\"", kLeft - 8, "\" y=\"", y, "\" text-anchor=\"end\" dy=\"0.35em\">",
                 tick_label(t, yt.size() > 1 ? yt[1] - yt[0] : 1), "</text>\n");
  }
  s += str_cat("<rect x=\"", kLeft, "\" y=\"", kTop, "\" width=\"", pw, "\" height=\"", ph,
               "\" fill=\"none\" stroke=\"black\"/>\n");
  s += str_cat("<text x=\"", kLeft + pw / 2, "\" y=\"", kHeight - 12, "\" text-anchor=\"middle\">step</text>\n");
  s += str_cat("<text transform=\"translate(18 ", kTop + ph / 2,
               ") rotate(-90)\" text-anchor=\"middle\">loss (nats per token)</text>\n");
  // Curves.
  auto polyline = [&](const std::vector<Point>& pts, const char* color) {
    if (pts.empty()) return;
    s += str_cat("<polyline fill=\"none\" stroke=\"", color, "\" stroke-width=\"1.5\" points=\"");
    for (const Point& p : pts) s += fmt("%.1f", X(p.x)) + "," + fmt("%.1f", Y(p.y)) + " ";
    s += "\"/>\n";
  };
  polyline(train, "#1f77b4");
  polyline(val, "#d62728");
  for (const Point& p : val)
    s += str_cat("<circle cx=\"", fmt("%.1f", X(p.x)), "\" cy=\"", fmt("%.1f", Y(p.y)),
                 "\" r=\"3\" fill=\"#d62728\"/>\n");
  // Legend.
  const double lx = kLeft + pw - 130, ly = kTop + 12;
  s += str_cat("<line x1=\"", lx, "\" y1=\"", ly, "\" x2=\"", lx + 24, "\" y2=\"", ly,
               "\" stroke=\"#1f77b4\" stroke-width=\"2\"/><text x=\"", lx + 30, "\" y=\"", ly,
               "\" dy=\"0.35em\">train loss</text>\n");
  s += str_cat("<line x1=\"", lx, "\" y1=\"", ly + 18, "\" x2=\"", lx + 24, "\" y2=\"", ly + 18,
               "\" stroke=\"#d62728\" stroke-width=\"2\"/><text x=\"", lx + 30, "\" y=\"", ly + 18,
               "\" dy=\"0.35em\">val loss</text>\n");
  s += "</svg>\n";
  return s;
}

void write_loss_curve(const std::string& path, const std::vector<MetricsRecord>& records, const std::string& title) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << loss_curve_svg(records, title);
    SERPENT_CHECK(out.flush(), "cannot write ", tmp);
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  SERPENT_CHECK(!ec, "cannot rename ", tmp, " to ", path, ": ", ec.message());
}

}  // namespace serpent

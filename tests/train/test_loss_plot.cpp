// The loss curve (train/loss_plot.h): round tick values covering the range, and an SVG with both
// curves, the axis labels and the training points thinned.
#include <algorithm>
#include <cmath>

#include "tests/helpers.h"
#include "train/loss_plot.h"
#include "train/metrics.h"

using namespace serpent;
using namespace serpent::testing;

namespace {

TEST(LossPlot, TicksAreRoundNumbersCoveringTheRange) {
  EXPECT_EQ(nice_ticks(0, 200), (std::vector<double>{0, 50, 100, 150, 200}));
  EXPECT_EQ(nice_ticks(0, 1000), (std::vector<double>{0, 200, 400, 600, 800, 1000}));
  EXPECT_EQ(nice_ticks(1.93, 5.61), (std::vector<double>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(nice_ticks(1.93, 2.61), (std::vector<double>{1.8, 2.0, 2.2, 2.4, 2.6, 2.8}));
  EXPECT_EQ(nice_ticks(0.0013, 0.0061), (std::vector<double>{0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.007}));
  const std::vector<double> flat = nice_ticks(2, 2);
  EXPECT_LT(flat.front(), 2);
  EXPECT_GT(flat.back(), 2);
}

TEST(LossPlot, SvgHasBothCurvesAndAxisLabels) {
  std::vector<MetricsRecord> rs;
  for (int s = 1; s <= 5000; ++s) {
    MetricsRecord r;
    r.step = s;
    r.loss = 5.0 / std::sqrt(double(s));
    if (s % 1000 == 0) r.val_loss = r.loss + 0.1;
    rs.push_back(r);
  }
  const std::string svg = loss_curve_svg(rs, "t <1>");
  EXPECT_NE(svg.find("t &lt;1&gt;"), std::string::npos);
  EXPECT_NE(svg.find(">5000<"), std::string::npos);  // an x tick at the last step
  EXPECT_NE(svg.find(">step<"), std::string::npos);
  size_t circles = 0;
  for (size_t p = svg.find("<circle"); p != std::string::npos; p = svg.find("<circle", p + 1)) ++circles;
  EXPECT_EQ(circles, 5u);
  // 5000 training points are thinned to at most 2000 in the polyline.
  const size_t start = svg.find("<polyline"), end = svg.find("/>", start);
  const std::string train = svg.substr(start, end - start);
  EXPECT_LE(std::count(train.begin(), train.end(), ','), 2000);
}

}  // namespace

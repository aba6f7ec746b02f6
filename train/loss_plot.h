// The loss curve of a run as a small self-contained SVG (runs/<name>/loss.svg): training loss
// and validation loss against the step, with labelled axes and ticks at round numbers.
#pragma once

#include <string>
#include <vector>

#include "train/metrics.h"

namespace serpent {

// Tick positions at "nice" values (1, 2 or 5 times a power of ten) covering [lo, hi], about
// `target` of them; the first is <= lo and the last >= hi.
std::vector<double> nice_ticks(double lo, double hi, int target = 6);

// The SVG text. Records without a finite loss are left out of the training curve; records with
// a val_loss make the validation curve.
std::string loss_curve_svg(const std::vector<MetricsRecord>& records, const std::string& title);

// Writes loss_curve_svg to path through a temporary file, so a viewer never sees half of it.
void write_loss_curve(const std::string& path, const std::vector<MetricsRecord>& records, const std::string& title);

}  // namespace serpent

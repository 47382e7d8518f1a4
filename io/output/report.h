// report.html: one self-contained page for a run directory (no network needed to view it): a chart
// (inline SVG) of every numeric key metrics.jsonl holds, against step for per-step records and
// against epoch for per-epoch ones, titled, ordered and grouped for the keys the trainer logs
// (unknown keys under their own name); the sample and reconstruction grids embedded as data URIs;
// eval.json as a table when present; the resolved config and the machine summary.
#pragma once

#include <string>

namespace distvae {

// Reads <run_dir>/metrics.jsonl, samples.png, recon.png, eval.json, config.yaml (those present)
// and writes <run_dir>/report.html atomically. Returns the path. Throws naming the file on errors.
std::string write_report(const std::string& run_dir);

}  // namespace distvae

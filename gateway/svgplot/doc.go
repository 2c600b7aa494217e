// Package svgplot draws small, self-contained SVG charts — line charts over
// time and bar histograms — for the gateway's status page and the demo
// report. The output needs no script, font or network access: the charts
// are plain SVG that any browser renders on an air-gapped network.
//
// Each data line is a <polyline class="series"> and each histogram bar a
// <rect class="bar">, both with a data-points / data-count attribute, so
// tests (and the status page's script) can tell an empty chart from one with
// data without parsing coordinates.
package svgplot

package gateway

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteTable prints directions side by side: stanzas by kind, raw, link and
// wire bytes, and the raw/wire ratio.
func WriteTable(w io.Writer, names []string, dirs []Direction) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(label string, f func(d Direction) string) {
		fmt.Fprintf(tw, "%s\t", label)
		for _, d := range dirs {
			fmt.Fprintf(tw, "%s\t", f(d))
		}
		fmt.Fprintln(tw)
	}
	fmt.Fprintf(tw, "\t")
	for _, n := range names {
		fmt.Fprintf(tw, "%s\t", n)
	}
	fmt.Fprintln(tw)
	for _, k := range []string{"message", "presence", "iq"} {
		row(k+" stanzas", func(d Direction) string { return fmt.Sprint(d.Stanzas[k]) })
	}
	row("raw bytes", func(d Direction) string { return fmt.Sprint(d.RawBytes) })
	row("link bytes", func(d Direction) string { return fmt.Sprint(d.LinkBytes) })
	row("wire bytes", func(d Direction) string { return fmt.Sprint(d.WireBytes) })
	row("raw/wire", func(d Direction) string { return fmt.Sprintf("%.2fx", d.Ratio()) })
	row("wire B/stanza", func(d Direction) string {
		if d.StanzasTotal == 0 {
			return "-"
		}
		return fmt.Sprintf("%.1f", float64(d.WireBytes)/float64(d.StanzasTotal))
	})
	tw.Flush()
}

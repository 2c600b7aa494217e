package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/isthmus-xmpp/isthmus/compress"
)

func init() {
	register("train-dict", "build a codec dictionary from S2S captures", func(args []string) error {
		return runTrainDict(os.Stdout, os.Stderr, args)
	})
}

// runTrainDict reads captures (as the gateway's [capture] writes them, or
// as `isthmus bench` reads them) and writes a zstd dictionary for the codec.
func runTrainDict(stdout, stderr io.Writer, args []string) error {
	fs := flag.NewFlagSet("train-dict", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "isthmus.zdict", "dictionary file to write (`FILE`)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: isthmus train-dict [-o FILE] CAPTURE...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errUsage
	}
	var streams [][][]byte
	n := 0
	pr := newProgress(stderr) // quiet unless stderr is a terminal
	defer pr.Done()
	for i, p := range fs.Args() {
		pr.Set("train-dict: reading %s (%d/%d)", p, i+1, fs.NArg())
		st, err := compress.ReadCapture(p)
		if err != nil {
			return fmt.Errorf("train-dict: %w", err)
		}
		streams = append(streams, st)
		n += len(st)
	}
	pr.Set("train-dict: training on %d stanzas from %d captures...", n, len(streams))
	d, err := compress.TrainDict(streams)
	if err != nil {
		return fmt.Errorf("train-dict: %w", err)
	}
	if err := os.WriteFile(*out, d, 0o644); err != nil {
		return fmt.Errorf("train-dict: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %s: %d bytes from %d stanzas in %d captures\n", *out, len(d), n, len(streams))
	return nil
}

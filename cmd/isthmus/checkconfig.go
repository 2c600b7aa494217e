package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/isthmus-xmpp/isthmus/gateway/config"
)

func init() {
	register("check-config", "check gateway configuration files", func(args []string) error {
		return runCheckConfig(os.Stdout, os.Stderr, args)
	})
}

// runCheckConfig loads each file in args and prints a one-line summary; it
// stops at, and returns, the first error.
func runCheckConfig(stdout, stderr io.Writer, args []string) error {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: isthmus check-config FILE...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errUsage
	}
	for _, file := range fs.Args() {
		c, err := config.Load(file)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: ok (%s)\n", file, summary(c))
	}
	return nil
}

func summary(c *config.Config) string {
	s := fmt.Sprintf("gateway %s, %d local domains, %d remote domains", c.Name, len(c.LocalDomains), len(c.RemoteDomains))
	if c.Link.Dial != "" {
		s += ", link dial " + c.Link.Dial
	}
	if c.Link.Listen != "" {
		s += ", link listen " + c.Link.Listen
	}
	return s
}

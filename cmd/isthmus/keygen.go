package main

import (
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/isthmus-xmpp/isthmus/internal/atomicfile"
	"github.com/isthmus-xmpp/isthmus/link/linkkey"
)

func init() {
	register("keygen", "create a gateway's link key pair and print its public key", func(args []string) error {
		return runKeygen(os.Stdout, os.Stderr, args)
	})
}

// runKeygen writes a new private key to -out (mode 0600; "-" for stdout) and
// prints the public half for the peer's link.peer_key. Messages go to
// stderr when the key itself goes to stdout.
func runKeygen(stdout, stderr io.Writer, args []string) error {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "isthmus.key", "file to write the private key to (`FILE`, \"-\" for stdout)")
	force := fs.Bool("force", false, "overwrite an existing key file")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: isthmus keygen [-out FILE] [-force]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "keygen: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return errUsage
	}
	if *out == "" {
		fmt.Fprintln(stderr, "keygen: -out must not be empty")
		fs.Usage()
		return errUsage
	}
	priv, err := linkkey.GenerateKey()
	if err != nil {
		return err
	}
	pemBytes, err := linkkey.MarshalPrivateKey(priv)
	if err != nil {
		return err
	}
	msgs := stdout
	if *out == "-" {
		if _, err := stdout.Write(pemBytes); err != nil {
			return fmt.Errorf("keygen: %w", err)
		}
		msgs = stderr
	} else {
		if err := writeKeyFile(*out, pemBytes, *force); err != nil {
			return err
		}
		fmt.Fprintf(msgs, "wrote private key to %s (mode 0600; keep it secret, set link.key_file to it)\n", *out)
	}
	pub := linkkey.FormatPublicKey(priv.Public().(ed25519.PublicKey))
	fmt.Fprintf(msgs, "public key: %s\n", pub)
	fmt.Fprintf(msgs, "put it in the peer gateway's configuration as link.peer_key:\n\n[link]\npeer_key = %q\n", pub)
	return nil
}

// writeKeyFile writes data with mode 0600. Without force it refuses to touch
// an existing file; with force it replaces the file atomically.
func writeKeyFile(path string, data []byte, force bool) error {
	if !force {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("keygen: %s exists; use -force to replace it (the peer's link.peer_key must then change too)", path)
		}
		if err != nil {
			return fmt.Errorf("keygen: %w", err)
		}
		if _, err := f.Write(data); err != nil {
			f.Close()
			os.Remove(path)
			return fmt.Errorf("keygen: %w", err)
		}
		if err := f.Close(); err != nil {
			os.Remove(path)
			return fmt.Errorf("keygen: %w", err)
		}
		return nil
	}
	if err := atomicfile.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	return nil
}

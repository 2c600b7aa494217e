package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/isthmus-xmpp/isthmus/link/linkkey"
)

var pubLine = regexp.MustCompile(`(?m)^public key: (ed25519:\S+)$`)

func TestKeygenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.key")
	var out, errOut bytes.Buffer
	if err := runKeygen(&out, &errOut, []string{"-out", path}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	priv, err := linkkey.LoadPrivateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	m := pubLine.FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no public key line in %q", out.String())
	}
	pub, err := linkkey.ParsePublicKey(m[1])
	if err != nil || !pub.Equal(priv.Public()) {
		t.Errorf("printed public key %s does not match the file (%v)", m[1], err)
	}
	if !strings.Contains(out.String(), "link.peer_key") || !strings.Contains(out.String(), `peer_key = "`+m[1]+`"`) {
		t.Errorf("output does not say where the key goes: %q", out.String())
	}

	// A second run refuses to overwrite; -force replaces the key.
	before, _ := os.ReadFile(path)
	err = runKeygen(&out, &errOut, []string{"-out", path})
	if err == nil || !strings.Contains(err.Error(), "-force") {
		t.Errorf("overwrite without -force: %v", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("key file changed without -force")
	}
	os.Chmod(path, 0o644)
	out.Reset()
	if err := runKeygen(&out, &errOut, []string{"-force", "-out", path}); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(path)
	if bytes.Equal(before, after) {
		t.Error("-force did not replace the key")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode after -force %v, want 0600", fi.Mode().Perm())
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Errorf("directory holds %d files after -force, want 1 (temp file left?)", len(ents))
	}
}

func TestKeygenStdout(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := runKeygen(&out, &errOut, []string{"-out", "-"}); err != nil {
		t.Fatal(err)
	}
	priv, err := linkkey.ParsePrivateKey(out.Bytes())
	if err != nil {
		t.Fatalf("stdout is not a PEM key: %v\n%s", err, out.String())
	}
	if strings.Contains(out.String(), "public key") {
		t.Error("messages mixed into the PEM on stdout")
	}
	m := pubLine.FindStringSubmatch(errOut.String())
	if m == nil {
		t.Fatalf("no public key line on stderr: %q", errOut.String())
	}
	if pub, _ := linkkey.ParsePublicKey(m[1]); !pub.Equal(priv.Public()) {
		t.Error("public key on stderr does not match the PEM")
	}
}

func TestKeygenUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := runKeygen(&out, &errOut, []string{"extra"}); !errors.Is(err, errUsage) {
		t.Errorf("extra argument: %v, want errUsage", err)
	}
	if err := runKeygen(&out, &errOut, []string{"-bogus"}); err == nil {
		t.Error("unknown flag accepted")
	}
	if !strings.Contains(errOut.String(), "usage: isthmus keygen") {
		t.Errorf("no usage message: %q", errOut.String())
	}
}

package main

import (
	"crypto/ed25519"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/isthmus-xmpp/isthmus/link/linkkey"

	"github.com/isthmus-xmpp/isthmus/gateway/config"
)

// The deployment kit's example configurations form a pair, are valid once
// the placeholders are replaced, and are refused as shipped.
func TestDeployExamples(t *testing.T) {
	load := func(name string) *config.Config {
		t.Helper()
		data, err := os.ReadFile("../../deploy/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := config.Parse(data, name); err == nil || !strings.Contains(err.Error(), "peer_key") {
			t.Errorf("%s as shipped: error %v, want the placeholder peer_key refused", name, err)
		}
		k, err := linkkey.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		pub := linkkey.FormatPublicKey(k.Public().(ed25519.PublicKey))
		var lines []string
		for _, l := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(l, "peer_key = ") {
				l = `peer_key = "` + pub + `"`
			}
			lines = append(lines, l)
		}
		c, err := config.Parse([]byte(strings.Join(lines, "\n")), name)
		if err != nil {
			t.Fatalf("%s with a real peer key: %v", name, err)
		}
		return c
	}
	ship, shore := load("ship.toml"), load("shore.toml")
	if !slices.Equal(slices.Sorted(maps.Keys(ship.LocalDomains)), slices.Sorted(slices.Values(shore.RemoteDomains))) ||
		!slices.Equal(slices.Sorted(maps.Keys(shore.LocalDomains)), slices.Sorted(slices.Values(ship.RemoteDomains))) {
		t.Errorf("domains do not pair: ship local %v remote %v, shore local %v remote %v",
			ship.LocalDomains, ship.RemoteDomains, shore.LocalDomains, shore.RemoteDomains)
	}
	if ship.Link.Dial == "" || shore.Link.Listen == "" {
		t.Error("the ship should dial and the shore listen")
	}
	if !strings.HasPrefix(ship.AdminListen, "127.0.0.1:") || !strings.HasPrefix(shore.AdminListen, "127.0.0.1:") {
		t.Error("the examples should keep the admin address on loopback")
	}

	unit, err := os.ReadFile("../../deploy/isthmus@.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"ExecStart=/usr/local/bin/isthmus run -drain 5s /etc/isthmus/%i.toml",
		"ExecReload=/bin/kill -HUP $MAINPID", "KillSignal=SIGTERM", "StateDirectory=isthmus/%i",
		"NoNewPrivileges=yes", "ProtectSystem=strict", "CapabilityBoundingSet=\n", "SystemCallFilter=@system-service",
	} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("unit lacks %q", want)
		}
	}
	// The socket units name their sockets as `isthmus run` expects and
	// point at the service; the drop-in passes them to it.
	for name, want := range map[string][]string{
		"isthmus-s2s@.socket":  {"FileDescriptorName=s2s\n", "Service=isthmus@%i.service\n", "ListenStream=10.1.0.2:5269\n"},
		"isthmus-link@.socket": {"FileDescriptorName=link\n", "Service=isthmus@%i.service\n", "ListenStream=0.0.0.0:17000\n"},
		"isthmus-sockets.conf": {"Sockets=isthmus-s2s@%i.socket isthmus-link@%i.socket\n"},
	} {
		b, err := os.ReadFile("../../deploy/" + name)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if !strings.Contains(string(b), w) {
				t.Errorf("%s lacks %q", name, w)
			}
		}
		if strings.Contains(string(b), "PartOf=isthmus") || strings.Contains(string(b), "BindsTo=isthmus") {
			t.Errorf("%s is tied to the service: restarting it would close the socket", name)
		}
	}
	if ship.S2S.Listen != "10.1.0.2:5269" || shore.Link.Listen != "0.0.0.0:17000" {
		t.Errorf("the socket units' addresses are ship's s2s.listen and shore's link.listen: %s, %s", ship.S2S.Listen, shore.Link.Listen)
	}
}

package config

import (
	"net/netip"
	"strings"
	"testing"
)

// TestS2SLimitKeys checks the [s2s] input limit and trust keys: defaults,
// a valid setting, and each bound.
func TestS2SLimitKeys(t *testing.T) {
	base := `
name = "g"
remote_domains = ["b.example"]
[local_domains]
"a.example" = "127.0.0.1:5269"
[link]
listen = ":0"
key_file = "k"
peer_key = "ed25519:9KrolTWJPkEhN88TeSAJnoHsJhD5E6wjhqKM8Y3TdQY="
[s2s]
dialback_secret = "0123456789abcdef"
`
	c, err := Parse([]byte(base), "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	s := c.S2S
	if s.MaxDepth != 64 || s.MaxAttributes != 64 || s.MaxTextSize != 131072 || s.MaxConnsPerAddress != 64 ||
		s.StanzaRate != 200 || s.StanzaBurst != 2000 || len(s.AllowFrom) != 0 || s.RequireTLS {
		t.Errorf("defaults: %+v", s)
	}
	c, err = Parse([]byte(base+`max_depth = 16
max_attributes = 32
max_text_size = 4096
max_conns_per_address = 0
stanza_rate = 12.5
stanza_burst = 1
allow_from = ["127.0.0.1", "10.0.0.0/8", "fd00::/8", "::1"]
`), "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	if s := c.S2S; s.MaxDepth != 16 || s.MaxAttributes != 32 || s.MaxTextSize != 4096 || s.MaxConnsPerAddress != 0 ||
		s.StanzaRate != 12.5 || s.StanzaBurst != 1 || len(s.AllowFrom) != 4 {
		t.Errorf("set: %+v", s)
	}
	for _, tc := range []struct{ add, want string }{
		{"max_depth = 3", "s2s.max_depth: 3 is out of range (4..1024)"},
		{"max_depth = 100000", "s2s.max_depth: 100000 is out of range"},
		{"max_attributes = 0", "s2s.max_attributes: 0 is out of range (8..4096)"},
		{"max_text_size = 100", "s2s.max_text_size: 100 is out of range (256..16777216)"},
		{"max_conns_per_address = -1", "s2s.max_conns_per_address: -1 is out of range (0 = off"},
		{"stanza_rate = -1.0", "s2s.stanza_rate: -1 is out of range"},
		{"stanza_rate = nan", "s2s.stanza_rate: NaN is out of range"},
		{"stanza_burst = 0", "s2s.stanza_burst: 0 is out of range (1..1000000)"},
		{`allow_from = ["10.0.0.300"]`, `s2s.allow_from: "10.0.0.300" is not an IP address or CIDR prefix`},
		{`allow_from = ["10.0.0.0/33"]`, `s2s.allow_from: "10.0.0.0/33" is not`},
		{`allow_from = ["gateway.example"]`, `s2s.allow_from: "gateway.example" is not`},
		{"require_tls = true", "s2s.require_tls: needs s2s.cert_file"},
		{`ca_file = " ca.pem"`, `s2s.ca_file: " ca.pem": give the path of a PEM file`},
		{`ca_file = "certs/"`, `s2s.ca_file: "certs/": give the path of a PEM file`},
		{"max_stanzas = 1", `unknown key "s2s.max_stanzas"`},
	} {
		_, err := Parse([]byte(base+tc.add+"\n"), "t.toml")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.add, err, tc.want)
		}
	}
}

func TestParsePrefix(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1":     "127.0.0.1/32",
		"10.1.2.3/8":    "10.0.0.0/8",
		"::1":           "::1/128",
		"fd00::1/8":     "fd00::/8",
		"192.168.0.0/0": "0.0.0.0/0",
	} {
		p, err := ParsePrefix(in)
		if err != nil || p != netip.MustParsePrefix(want) {
			t.Errorf("ParsePrefix(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	for _, in := range []string{"", "1.2.3", "fe80::1%eth0", "10.0.0.0/", "/8"} {
		if _, err := ParsePrefix(in); err == nil {
			t.Errorf("ParsePrefix(%q) accepted", in)
		}
	}
}

// TestLearnDictBytes checks link.learn_dict_bytes: its default, off, and
// its bounds.
func TestLearnDictBytes(t *testing.T) {
	base := `
name = "g"
remote_domains = ["b.example"]
[local_domains]
"a.example" = "127.0.0.1:5269"
[s2s]
dialback_secret = "0123456789abcdef"
[link]
listen = ":0"
key_file = "k"
peer_key = "ed25519:9KrolTWJPkEhN88TeSAJnoHsJhD5E6wjhqKM8Y3TdQY="
`
	c, err := Parse([]byte(base), "t.toml")
	if err != nil || c.Link.LearnDictBytes != 512<<10 {
		t.Fatalf("default: %v, %v", c, err)
	}
	for v, ok := range map[string]bool{"0": true, "262144": true, "67108864": true, "262143": false, "67108865": false, "-1": false} {
		_, err := Parse([]byte(base+"learn_dict_bytes = "+v+"\n"), "t.toml")
		if ok != (err == nil) || !ok && !strings.Contains(err.Error(), "link.learn_dict_bytes") {
			t.Errorf("learn_dict_bytes = %s: %v", v, err)
		}
	}
}

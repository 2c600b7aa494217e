package config

import "testing"

func TestCaptureSection(t *testing.T) {
	base := `
name = "g"
remote_domains = ["b.example"]
[local_domains]
"a.example" = "localhost:5269"
[link]
listen = ":0"
key_file = "k"
peer_key = "ed25519:9KrolTWJPkEhN88TeSAJnoHsJhD5E6wjhqKM8Y3TdQY="
[s2s]
dialback_secret = "0123456789abcdef"
`
	c, err := Parse([]byte(base), "min.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Capture.Dir != "" {
		t.Errorf("capture on by default: %q", c.Capture.Dir)
	}
	c, err = Parse([]byte(base+"[capture]\ndir = \"captures\"\n"), "min.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Capture.Dir != "captures" {
		t.Errorf("capture dir %q", c.Capture.Dir)
	}
	if _, err := Parse([]byte(base+"[capture]\ndirectory = \"x\"\n"), "min.toml"); err == nil {
		t.Error("misspelt [capture] key accepted")
	}
}

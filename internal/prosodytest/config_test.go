package prosodytest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEncodeName(t *testing.T) {
	for in, want := range map[string]string{
		"a.test":      "a%2etest",
		"alice":       "alice",
		"bob_smith-1": "bob%5fsmith%2d1",
		"Ü":           "%c3%9c",
	} {
		if got := encodeName(in); got != want {
			t.Errorf("encodeName(%q) = %q, want %q", in, got, want)
		}
	}
	got := RosterPath("/d", "a.test", "alice")
	if want := filepath.Join("/d", "a%2etest", "roster", "alice.dat"); got != want {
		t.Errorf("RosterPath = %q, want %q", got, want)
	}
}

func TestLuaString(t *testing.T) {
	for in, want := range map[string]string{
		`plain`:     `"plain"`,
		`a"b\c`:     `"a\"b\\c"`,
		"nl\nx\x00": `"nl\010x\000"`,
	} {
		if got := luaString(in); got != want {
			t.Errorf("luaString(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestRenderRoster(t *testing.T) {
	got, err := RenderRoster([]RosterItem{
		{JID: "bob@b.test", Subscription: "both", Name: "Bob", Groups: []string{"Friends"}},
		{JID: "carol@c.test", Subscription: "to"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `return {
	[false] = { version = 1; pending = { }; };
	["bob@b.test"] = { subscription = "both"; groups = { ["Friends"] = true; }; name = "Bob"; };
	["carol@c.test"] = { subscription = "to"; groups = { }; };
};
`
	if got != want {
		t.Errorf("RenderRoster:\n%s\nwant:\n%s", got, want)
	}
	for _, bad := range [][]RosterItem{
		{{JID: "bob@b.test", Subscription: "maybe"}},
		{{JID: "bob@b.test/res", Subscription: "both"}},
		{{JID: "", Subscription: "both"}},
		Both("bob@b.test", "bob@b.test"),
	} {
		if _, err := RenderRoster(bad); err == nil {
			t.Errorf("RenderRoster(%+v) accepted", bad)
		}
	}
}

func TestWriteRoster(t *testing.T) {
	dir := t.TempDir()
	if err := WriteRoster(dir, "a.test", "alice", Both("bob@b.test")); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "a%2etest", "roster", "alice.dat"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `["bob@b.test"] = { subscription = "both";`) {
		t.Errorf("roster file:\n%s", data)
	}
}

func TestConfig(t *testing.T) {
	cfg, err := Config(Options{
		Domain:         "a.test",
		Overrides:      map[string]string{"b.test": "127.0.0.1:35269", "c.test": "[::1]:5269"},
		DialbackSecret: `s"cret`,
	}, "/tmp/x", "/p", 5222, 5269)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`c2s_ports = { 5222 }`,
		`s2s_ports = { 5269 }`,
		`c2s_interfaces = { "127.0.0.1" }`,
		`s2s_interfaces = { "127.0.0.1" }`,
		`data_path = "/tmp/x/data"`,
		`plugin_paths = { "/p" }`,
		`s2s_require_encryption = false`,
		`s2s_secure_auth = false`,
		`dialback_secret = "s\"cret"`,
		`["b.test"] = { "127.0.0.1", 35269 };`,
		`["c.test"] = { "::1", 5269 };`,
		`"s2s_connect_override"`,
		`VirtualHost "a.test"`,
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config lacks %s:\n%s", want, cfg)
		}
	}
	if strings.Contains(cfg, `"tls"`) {
		t.Errorf("config enables tls:\n%s", cfg)
	}
	if strings.Index(cfg, "VirtualHost") < strings.Index(cfg, "s2s_connect_overrides") {
		t.Error("global options must come before VirtualHost")
	}
	for _, bad := range []Options{
		{},
		{Domain: "a.test", Overrides: map[string]string{"b.test": "nohostport"}},
		{Domain: "a.test", Overrides: map[string]string{"b.test": "127.0.0.1:0"}},
		{Domain: "a.test", Overrides: map[string]string{"b.test": "127.0.0.1:http"}},
	} {
		if _, err := Config(bad, "/tmp/x", "/p", 1, 2); err == nil {
			t.Errorf("Config(%+v) accepted", bad)
		}
	}
}

func TestPluginDir(t *testing.T) {
	dir, err := PluginDir()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "mod_s2s_connect_override.lua"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "s2s_connect_overrides") {
		t.Error("plugin does not read s2s_connect_overrides")
	}
}

package prosodytest

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// modules lists what a test server loads besides Prosody's auto-loaded core
// (c2s, s2s, presence, message, iq, offline). No "tls": there is no
// certificate, and S2S to isthmus is plain.
var modules = []string{
	"roster", "saslauth", "disco", "ping", "version", "dialback", "carbons", "posix",
	"s2s_connect_override",
}

// Config renders a Prosody config for opt. dir holds data, log and pid file;
// plugins is the folder of mod_s2s_connect_override.lua.
func Config(opt Options, dir, plugins string, c2sPort, s2sPort int) (string, error) {
	if opt.Domain == "" {
		return "", fmt.Errorf("prosodytest: config: empty domain")
	}
	level := opt.LogLevel
	switch level {
	case "", "debug":
		level = "debug"
	default:
		level = "info"
	}
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("-- written by isthmus internal/prosodytest")
	p("run_as_root = true")
	p("pidfile = %s", luaString(filepath.Join(dir, "prosody.pid")))
	p("data_path = %s", luaString(filepath.Join(dir, "data")))
	p("plugin_paths = { %s }", luaString(plugins))
	p("log = { { levels = { min = %s }, to = \"file\", filename = %s } }",
		luaString(level), luaString(filepath.Join(dir, "prosody.log")))
	p("certificates = %s", luaString(filepath.Join(dir, "certs")))
	p("interfaces = { \"127.0.0.1\" }")
	p("local_interfaces = { \"127.0.0.1\" }")
	p("c2s_interfaces = { \"127.0.0.1\" }")
	p("s2s_interfaces = { \"127.0.0.1\" }")
	p("c2s_ports = { %d }", c2sPort)
	p("s2s_ports = { %d }", s2sPort)
	p("c2s_direct_tls_ports = { }")
	p("s2s_direct_tls_ports = { }")
	p("legacy_ssl_ports = { }")
	p("http_ports = { }")
	p("https_ports = { }")
	p("component_ports = { }")
	p("authentication = \"internal_hashed\"")
	p("storage = \"internal\"")
	p("c2s_require_encryption = false")
	p("allow_unencrypted_plain_auth = true")
	if opt.TLS.Cert == "" {
		p("s2s_require_encryption = false")
		p("s2s_secure_auth = false")
	} else {
		// Prosody's defaults: s2s_require_encryption = true,
		// s2s_secure_auth = false; both left unset.
		p("ssl = { certificate = %s; key = %s; cafile = %s; }", luaString(opt.TLS.Cert), luaString(opt.TLS.Key), luaString(opt.TLS.CA))
	}
	p("limits = { }")
	if opt.DialbackSecret != "" {
		p("dialback_secret = %s", luaString(opt.DialbackSecret))
	}
	mods := make([]string, 0, len(modules)+1)
	for _, m := range modules {
		mods = append(mods, luaString(m))
	}
	if opt.TLS.Cert != "" {
		mods = append(mods, luaString("tls"))
	}
	p("modules_enabled = { %s }", strings.Join(mods, "; "))

	domains := make([]string, 0, len(opt.Overrides))
	for d := range opt.Overrides {
		domains = append(domains, d)
	}
	sort.Strings(domains)
	p("s2s_connect_overrides = {")
	for _, d := range domains {
		host, port, err := net.SplitHostPort(opt.Overrides[d])
		if err != nil {
			return "", fmt.Errorf("prosodytest: override for %s: %w", d, err)
		}
		n, err := strconv.Atoi(port)
		if err != nil || n <= 0 || n > 65535 {
			return "", fmt.Errorf("prosodytest: override for %s: bad port %q", d, port)
		}
		p("\t[%s] = { %s, %d };", luaString(d), luaString(host), n)
	}
	p("}")
	if opt.ExtraConfig != "" {
		p("%s", opt.ExtraConfig)
	}
	p("")
	p("VirtualHost %s", luaString(opt.Domain))
	return b.String(), nil
}

// luaString quotes s as a Lua string literal.
func luaString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, "\\%03d", c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// encodeName encodes a host or user name as Prosody's util.datamanager does
// for file names: every byte that is not an ASCII letter or digit becomes
// %xx (lower-case hex), so "a.test" is stored as "a%2etest".
func encodeName(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02x", c)
	}
	return b.String()
}

// RosterPath is where Prosody's internal storage keeps user@domain's roster
// under dataPath.
func RosterPath(dataPath, domain, user string) string {
	return filepath.Join(dataPath, encodeName(domain), "roster", encodeName(user)+".dat")
}

// RenderRoster renders items as the Lua table Prosody 0.12 stores as a roster.
func RenderRoster(items []RosterItem) (string, error) {
	var b strings.Builder
	b.WriteString("return {\n")
	b.WriteString("\t[false] = { version = 1; pending = { }; };\n")
	seen := make(map[string]bool)
	for _, it := range items {
		if it.JID == "" || strings.Contains(it.JID, "/") {
			return "", fmt.Errorf("prosodytest: roster item %q: want a bare JID", it.JID)
		}
		switch it.Subscription {
		case "none", "to", "from", "both":
		default:
			return "", fmt.Errorf("prosodytest: roster item %s: bad subscription %q", it.JID, it.Subscription)
		}
		if seen[it.JID] {
			return "", fmt.Errorf("prosodytest: roster item %s twice", it.JID)
		}
		seen[it.JID] = true
		fmt.Fprintf(&b, "\t[%s] = { subscription = %s; groups = {", luaString(it.JID), luaString(it.Subscription))
		for _, g := range it.Groups {
			fmt.Fprintf(&b, " [%s] = true;", luaString(g))
		}
		b.WriteString(" };")
		if it.Name != "" {
			fmt.Fprintf(&b, " name = %s;", luaString(it.Name))
		}
		b.WriteString(" };\n")
	}
	b.WriteString("};\n")
	return b.String(), nil
}

// WriteRoster writes user@domain's roster into Prosody's internal storage at
// dataPath. Prosody must not be running for that user's host.
func WriteRoster(dataPath, domain, user string, items []RosterItem) error {
	text, err := RenderRoster(items)
	if err != nil {
		return err
	}
	path := RosterPath(dataPath, domain, user)
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return fmt.Errorf("prosodytest: roster: %w", err)
	}
	if err := os.WriteFile(path, []byte(text), 0o640); err != nil {
		return fmt.Errorf("prosodytest: roster: %w", err)
	}
	return nil
}

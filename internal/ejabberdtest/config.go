package ejabberdtest

import (
	"fmt"
	"strings"
)

// Inetrc is the Erlang resolver configuration that sends ejabberd's DNS
// queries to the stub on 127.0.0.1:dnsPort. resolv_conf must be emptied
// before the name server is set: otherwise OTP reads /etc/resolv.conf
// after the inetrc and its name servers replace ours.
func Inetrc(dnsPort int) string {
	return fmt.Sprintf("{resolv_conf, \"\"}.\n{nameserver, {127,0,0,1}, %d}.\n{lookup, [file, dns]}.\n", dnsPort)
}

// Config renders ejabberd.yml: Debian's S2S security defaults
// (s2s_use_starttls: required, dialback enabled, its TLS options), the
// certificate, the CA for S2S peers, loopback listeners.
func Config(opt Options, c2sPort, s2sPort int, cert, key, ca string) string {
	level := "info"
	if opt.LogLevel == "debug" {
		level = "debug"
	}
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("# written by isthmus internal/ejabberdtest")
	p("loglevel: %s", level)
	p("log_rotate_count: 0")
	p("hosts:")
	p("  - %q", opt.Domain)
	p("certfiles:")
	p("  - %q", cert)
	p("  - %q", key)
	p("ca_file: %q", ca) // checks certfiles (else: a warning, signed by unknown CA)
	p("s2s_cafile: %q", ca)
	starttls := "required"
	if opt.S2SStartTLS != "" {
		starttls = opt.S2SStartTLS
	}
	p("s2s_use_starttls: %s", starttls)
	p("s2s_ciphers: \"HIGH:!aNULL:!eNULL:!3DES:@STRENGTH\"")
	p("s2s_protocol_options: [no_sslv3, no_tlsv1, no_tlsv1_1, cipher_server_preference, no_compression]")
	p("outgoing_s2s_families: [ipv4]")
	// After a failed connection ejabberd bounces every stanza for the
	// domain for a random time up to this (default 300 s); a gateway
	// restart must not cost minutes (docs/deployment.md).
	p("s2s_max_retry_delay: 10")
	p("listen:")
	p("  - port: %d", c2sPort)
	p("    ip: \"127.0.0.1\"")
	p("    module: ejabberd_c2s")
	p("    max_stanza_size: 262144")
	p("    access: c2s")
	p("  - port: %d", s2sPort)
	p("    ip: \"127.0.0.1\"")
	p("    module: ejabberd_s2s_in")
	p("    max_stanza_size: 524288")
	p("auth_method: internal")
	p("auth_password_format: scram")
	p("acl:")
	p("  local:")
	p("    user_regexp: \"\"")
	p("access_rules:")
	p("  local:")
	p("    allow: local")
	p("  c2s:")
	p("    allow: all")
	p("  muc_create:")
	p("    allow: local")
	p("shaper_rules:")
	p("  max_user_offline_messages: 5000")
	p("modules:")
	p("  mod_caps: {}")
	p("  mod_disco: {}")
	p("  mod_last: {}")
	if opt.MUC {
		p("  mod_muc:")
		p("    host: \"conference.@HOST@\"")
		p("    access: [allow]")
		p("    access_create: muc_create")
		p("    access_persistent: muc_create")
		p("    history_size: %d", opt.MUCHistory)
	}
	p("  mod_offline:")
	p("    access_max_user_messages: max_user_offline_messages")
	p("  mod_ping: {}")
	p("  mod_roster:")
	p("    versioning: true")
	p("  mod_s2s_dialback: {}")
	p("  mod_version: {}")
	if opt.Modules != "" {
		p("%s", strings.TrimRight(opt.Modules, "\n"))
	}
	if opt.Extra != "" {
		p("%s", opt.Extra)
	}
	return b.String()
}

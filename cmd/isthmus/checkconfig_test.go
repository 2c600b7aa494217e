package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestCheckConfig(t *testing.T) {
	var out, errOut bytes.Buffer
	err := runCheckConfig(&out, &errOut, []string{"../../testdata/configs/ship.toml", "../../testdata/configs/shore.toml"})
	if err != nil {
		t.Fatal(err)
	}
	want := "../../testdata/configs/ship.toml: ok (gateway ship, 1 local domains, 1 remote domains, link dial 127.0.0.1:17000)\n" +
		"../../testdata/configs/shore.toml: ok (gateway shore, 1 local domains, 1 remote domains, link listen 127.0.0.1:17000)\n"
	if out.String() != want {
		t.Errorf("output\n%s\nwant\n%s", out.String(), want)
	}
}

func TestCheckConfigStopsAtFirstError(t *testing.T) {
	var out, errOut bytes.Buffer
	err := runCheckConfig(&out, &errOut, []string{
		"../../testdata/configs/ship.toml",
		"../../testdata/configs/bad-misspelt.toml",
		"../../testdata/configs/shore.toml",
	})
	if err == nil || !strings.Contains(err.Error(), `bad-misspelt.toml:13: unknown key "link.batch_windw" (did you mean "link.batch_window"?)`) {
		t.Errorf("error = %v", err)
	}
	if strings.Contains(out.String(), "shore") || !strings.Contains(out.String(), "ship.toml: ok") {
		t.Errorf("output = %q, want only ship ok", out.String())
	}
}

func TestCheckConfigUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := runCheckConfig(&out, &errOut, nil); !errors.Is(err, errUsage) {
		t.Errorf("no args: error = %v, want errUsage", err)
	}
	if !strings.Contains(errOut.String(), "usage: isthmus check-config FILE...") {
		t.Errorf("usage message = %q", errOut.String())
	}
	if _, ok := commands["check-config"]; !ok {
		t.Error("check-config is not registered")
	}
}

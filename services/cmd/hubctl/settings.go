package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
)

// Defaults of the settings.
const (
	defaultAddr    = "127.0.0.1:7000"
	defaultTimeout = 30 * time.Second
)

// Output formats of -o.
const (
	outputTable = "table"
	outputJSON  = "json"
)

// settings are what every command needs to reach hubhooks, resolved from
// (highest first) flags, HUBHOOKS_* variables, the config file and the
// defaults. source tells where each came from, for `hubctl settings`.
type settings struct {
	Addr     string
	LogsAddr string
	Token    string
	Hub      string
	Output   string
	TLS      bool
	CAFile   string
	Timeout  time.Duration
	// File is the config file read ("" when none).
	File   string
	source map[string]string
}

// fileSettings is the config file: YAML with the flags' names as keys.
type fileSettings struct {
	Addr     string `yaml:"addr"`
	LogsAddr string `yaml:"logs-addr"`
	Token    string `yaml:"token"`
	Hub      string `yaml:"hub"`
	Output   string `yaml:"output"`
	TLS      *bool  `yaml:"tls"`
	CAFile   string `yaml:"ca-file"`
	Timeout  string `yaml:"timeout"`
}

// setting is one resolvable setting: its flag, its variable (may be empty)
// and its value in the config file.
type setting struct {
	flag, env string
	file      func(*fileSettings) string
}

var settingTable = []setting{
	{"addr", "HUBHOOKS_ADDR", func(f *fileSettings) string { return f.Addr }},
	{"logs-addr", "HUBHOOKS_LOGS_ADDR", func(f *fileSettings) string { return f.LogsAddr }},
	{"token", "HUBHOOKS_TOKEN", func(f *fileSettings) string { return f.Token }},
	{"hub", "HUBHOOKS_HUB", func(f *fileSettings) string { return f.Hub }},
	{"output", "HUBHOOKS_OUTPUT", func(f *fileSettings) string { return f.Output }},
	{"tls", "HUBHOOKS_TLS", func(f *fileSettings) string {
		if f.TLS == nil {
			return ""
		}
		return strconv.FormatBool(*f.TLS)
	}},
	{"ca-file", "HUBHOOKS_TLS_CA", func(f *fileSettings) string { return f.CAFile }},
	{"timeout", "", func(f *fileSettings) string { return f.Timeout }},
}

// configFileEnv names the config file instead of the default path.
const configFileEnv = "HUBCTL_CONFIG"

// defaultConfigFile is $XDG_CONFIG_HOME/hubhooks/hubctl.yaml (on Linux
// ~/.config/hubhooks/hubctl.yaml).
func defaultConfigFile(getenv func(string) string) string {
	dir := getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home := getenv("HOME")
		if home == "" {
			if d, err := os.UserConfigDir(); err == nil {
				return filepath.Join(d, "hubhooks", "hubctl.yaml")
			}
			return ""
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "hubhooks", "hubctl.yaml")
}

// readFileSettings reads the config file at path. A missing file is no
// error when the path is the default one (explicit says it was asked for).
func readFileSettings(path string, explicit bool) (*fileSettings, bool, error) {
	f := &fileSettings{}
	if path == "" {
		return f, false, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		return f, false, nil
	}
	if err != nil {
		return nil, false, usagef("config file: %v", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(f); err != nil && !errors.Is(err, io.EOF) { // io.EOF: an empty file
		return nil, false, usagef("config file %s: %v (keys: addr, logs-addr, token, hub, output, tls, ca-file, timeout)", path, err)
	}
	return f, true, nil
}

// resolve computes the settings of cmd from its flags, getenv and the
// config file.
func resolve(cmd *cobra.Command, g *globalFlags, getenv func(string) string) (*settings, error) {
	path, explicit := g.config, cmd.Flags().Changed("config")
	if !explicit {
		if p := getenv(configFileEnv); p != "" {
			path, explicit = p, true
		} else {
			path = defaultConfigFile(getenv)
		}
	}
	file, found, err := readFileSettings(path, explicit)
	if err != nil {
		return nil, err
	}
	s := &settings{source: map[string]string{}}
	if found {
		s.File = path
	}
	flagValue := map[string]string{
		"addr": g.addr, "logs-addr": g.logsAddr, "token": g.token, "hub": g.hub,
		"output": g.output, "tls": strconv.FormatBool(g.tls), "ca-file": g.caFile, "timeout": g.timeout,
	}
	val := map[string]string{}
	for _, st := range settingTable {
		switch {
		case cmd.Flags().Changed(st.flag):
			val[st.flag], s.source[st.flag] = flagValue[st.flag], "flag --"+st.flag
		case st.env != "" && getenv(st.env) != "":
			val[st.flag], s.source[st.flag] = getenv(st.env), "environment "+st.env
		case st.file(file) != "":
			val[st.flag], s.source[st.flag] = st.file(file), "config file"
		default:
			s.source[st.flag] = "default"
		}
	}
	var errs []error
	s.Addr = val["addr"]
	if s.Addr == "" {
		s.Addr = defaultAddr
	}
	s.LogsAddr = val["logs-addr"]
	if s.LogsAddr == "" {
		s.LogsAddr = s.Addr
		s.source["logs-addr"] = "same as addr"
	}
	s.Token, s.Hub, s.CAFile = val["token"], val["hub"], val["ca-file"]
	s.Output = val["output"]
	switch s.Output {
	case "":
		s.Output = outputTable
	case outputTable, outputJSON:
	default:
		errs = append(errs, fmt.Errorf("output %q (%s): use table or json", s.Output, s.source["output"]))
	}
	if v := val["tls"]; v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("tls %q (%s): use true or false", v, s.source["tls"]))
		}
		s.TLS = b
	}
	s.TLS = s.TLS || s.CAFile != ""
	s.Timeout = defaultTimeout
	if v := val["timeout"]; v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("timeout %q (%s): a positive duration such as 30s or 2m", v, s.source["timeout"]))
		} else {
			s.Timeout = d
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, usageError{err}
	}
	return s, nil
}

// requireHub returns the hub the command acts on, or a usage error saying
// how to name one.
func (s *settings) requireHub() (string, error) {
	if s.Hub == "" {
		return "", usagef("no hub: pass --hub <hub id>, set HUBHOOKS_HUB, or put \"hub: <hub id>\" in the config file")
	}
	return s.Hub, nil
}

// configFileMode warns about a config file holding a token that others may
// read.
func configFileMode(path string) string {
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm()&0o077 == 0 {
		return ""
	}
	return fmt.Sprintf("warning: %s holds a token and is readable by others (mode %s); chmod 600 it", path, st.Mode().Perm())
}

package daemon

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Env returns the value of the environment variable key, or def when unset or empty.
func Env(key, def string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return def
}

// EnvInt is Env for integers; a malformed value is reported, not ignored.
func EnvInt(key string, def int) (int, error) {
	n, err := envInteger(key, int64(def), strconv.IntSize)
	return int(n), err
}

// EnvInt64 is EnvInt for 64-bit integers.
func EnvInt64(key string, def int64) (int64, error) { return envInteger(key, def, 64) }

func envInteger(key string, def int64, bits int) (int64, error) {
	v := Env(key, "")
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, bits)
	if err != nil {
		return def, fmt.Errorf("%s=%q: not an integer", key, v)
	}
	return n, nil
}

// EnvFloat is Env for decimal numbers.
func EnvFloat(key string, def float64) (float64, error) {
	v := Env(key, "")
	if v == "" {
		return def, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return def, fmt.Errorf("%s=%q: not a number", key, v)
	}
	return f, nil
}

// EnvBool is Env for booleans (1, true, yes, on / 0, false, no, off).
func EnvBool(key string, def bool) (bool, error) {
	v := strings.ToLower(Env(key, ""))
	switch v {
	case "":
		return def, nil
	case "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off":
		return false, nil
	}
	return def, fmt.Errorf("%s=%q: not a boolean", key, v)
}

// EnvDuration is Env for Go durations.
func EnvDuration(key string, def time.Duration) (time.Duration, error) {
	v := Env(key, "")
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return def, fmt.Errorf("%s=%q: not a duration: %v", key, v, err)
	}
	return d, nil
}

// ParseDurations parses a comma-separated list of Go durations such as
// "0s,5s,5m,30m". Every entry must be zero or positive.
func ParseDurations(s string) ([]time.Duration, error) {
	var out []time.Duration
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		d, err := time.ParseDuration(f)
		if err != nil {
			return nil, fmt.Errorf("duration %q: %v", f, err)
		}
		if d < 0 {
			return nil, fmt.Errorf("duration %q: negative", f)
		}
		out = append(out, d)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no durations in %q", s)
	}
	return out, nil
}

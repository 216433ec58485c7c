// Package procstat reads a Linux process's CPU time and memory from /proc:
// utime+stime from /proc/<pid>/stat and VmHWM/VmRSS from /proc/<pid>/status.
package procstat

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// ClockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat.
// It is 100 on every Linux architecture Go supports (the kernel exports a
// fixed USER_HZ to user space regardless of CONFIG_HZ).
const ClockTicks = 100

// ErrFormat is wrapped by every parse error.
var ErrFormat = errors.New("unexpected /proc format")

// Sample is one reading of a process.
type Sample struct {
	// CPU is user + system time consumed since the process started.
	CPU time.Duration
	// RSSBytes is the resident set size now (VmRSS).
	RSSBytes int64
	// PeakRSSBytes is the peak resident set size (VmHWM).
	PeakRSSBytes int64
	// Comm is the process name from /proc/<pid>/stat.
	Comm string
}

// Read samples process pid.
func Read(pid int) (Sample, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Sample{}, fmt.Errorf("read stat of pid %d: %w", pid, err)
	}
	comm, cpu, err := ParseStat(string(stat))
	if err != nil {
		return Sample{}, fmt.Errorf("pid %d: %w", pid, err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Sample{}, fmt.Errorf("read status of pid %d: %w", pid, err)
	}
	rss, hwm, err := ParseStatus(string(status))
	if err != nil {
		return Sample{}, fmt.Errorf("pid %d: %w", pid, err)
	}
	return Sample{CPU: cpu, RSSBytes: rss, PeakRSSBytes: hwm, Comm: comm}, nil
}

// ParseStat parses the content of /proc/<pid>/stat and returns the command
// name and utime+stime. The command name is in parentheses and may itself
// contain spaces and parentheses, so fields are counted from the last ')'.
func ParseStat(s string) (comm string, cpu time.Duration, err error) {
	open := strings.IndexByte(s, '(')
	closing := strings.LastIndexByte(s, ')')
	if open < 0 || closing < open {
		return "", 0, fmt.Errorf("%w: stat has no (comm)", ErrFormat)
	}
	comm = s[open+1 : closing]
	// After ") " come field 3 (state) onwards; utime is field 14, stime 15.
	fields := strings.Fields(s[closing+1:])
	const utimeIdx, stimeIdx = 14 - 3, 15 - 3
	if len(fields) <= stimeIdx {
		return "", 0, fmt.Errorf("%w: stat has %d fields after comm, want > %d", ErrFormat, len(fields), stimeIdx)
	}
	ut, err := strconv.ParseInt(fields[utimeIdx], 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("%w: utime %q", ErrFormat, fields[utimeIdx])
	}
	st, err := strconv.ParseInt(fields[stimeIdx], 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("%w: stime %q", ErrFormat, fields[stimeIdx])
	}
	return comm, time.Duration(ut+st) * time.Second / ClockTicks, nil
}

// ParseStatus parses the content of /proc/<pid>/status and returns VmRSS and
// VmHWM in bytes. A kernel thread or zombie has neither: both are then 0.
func ParseStatus(s string) (rss, hwm int64, err error) {
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		f := strings.Fields(val)
		if len(f) != 2 || f[1] != "kB" {
			return 0, 0, fmt.Errorf("%w: %s %q", ErrFormat, key, strings.TrimSpace(val))
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%w: %s %q", ErrFormat, key, f[0])
		}
		if key == "VmRSS" {
			rss = kb * 1024
		} else {
			hwm = kb * 1024
		}
	}
	return rss, hwm, sc.Err()
}

package procstat

import (
	"errors"
	"os"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		wantComm string
		wantCPU  time.Duration
		wantErr  bool
	}{
		{
			name:     "plain",
			in:       "1234 (hubd) S 1 1234 1234 0 -1 4194560 5000 0 0 0 250 130 0 0 20 0 12 0 100 1000000 2000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n",
			wantComm: "hubd",
			wantCPU:  3800 * time.Millisecond,
		},
		{
			name:     "comm with spaces and parens",
			in:       "42 (a (b) c) R 1 42 42 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 5 0 0",
			wantComm: "a (b) c",
			wantCPU:  100 * time.Millisecond,
		},
		{name: "no comm", in: "42 hubd R 1 2 3", wantErr: true},
		{name: "truncated", in: "42 (hubd) R 1 42 42 0 -1 0 0 0 0 0 7", wantErr: true},
		{name: "bad utime", in: "42 (hubd) R 1 42 42 0 -1 0 0 0 0 0 x 3 0 0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			comm, cpu, err := ParseStat(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrFormat) {
					t.Fatalf("err = %v, want ErrFormat", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if comm != tt.wantComm || cpu != tt.wantCPU {
				t.Errorf("got (%q, %v), want (%q, %v)", comm, cpu, tt.wantComm, tt.wantCPU)
			}
		})
	}
}

func TestParseStatus(t *testing.T) {
	tests := []struct {
		name             string
		in               string
		wantRSS, wantHWM int64
		wantErr          bool
	}{
		{
			name:    "process",
			in:      "Name:\thubd\nVmPeak:\t 900000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\nThreads:\t12\n",
			wantRSS: 40960 * 1024, wantHWM: 51200 * 1024,
		},
		{name: "kernel thread", in: "Name:\tkthreadd\nState:\tS (sleeping)\n"},
		{name: "bad unit", in: "VmRSS:\t 12 MB\n", wantErr: true},
		{name: "bad number", in: "VmHWM:\t 1x kB\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rss, hwm, err := ParseStatus(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrFormat) {
					t.Fatalf("err = %v, want ErrFormat", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rss != tt.wantRSS || hwm != tt.wantHWM {
				t.Errorf("got rss=%d hwm=%d, want %d %d", rss, hwm, tt.wantRSS, tt.wantHWM)
			}
		})
	}
}

func TestReadSelf(t *testing.T) {
	s, err := Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.PeakRSSBytes <= 0 || s.RSSBytes <= 0 || s.PeakRSSBytes < s.RSSBytes {
		t.Errorf("implausible memory: %+v", s)
	}
	if s.Comm == "" {
		t.Errorf("no comm: %+v", s)
	}
	if _, err := Read(-1); err == nil {
		t.Errorf("Read(-1) succeeded")
	}
}

package collector

import (
	"bytes"
	"math"
	"strconv"
	"time"
)

// Flink's REST API is not strict about numbers: metric endpoints send them
// as strings, statistics send "NaN" when there is no sample (Jackson writes
// a NaN double as a string), and fields come and go between versions. These
// types accept a number, a numeric string, "NaN"/"Infinity", null or an
// absent field, and say whether a usable value arrived.

// number is a lenient float.
type number struct {
	V  float64
	OK bool
}

func (n *number) UnmarshalJSON(b []byte) error {
	*n = number{}
	b = unquote(b)
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return nil // "NaN", "Infinity", or text where a number was expected: no value
	}
	n.V, n.OK = v, true
	return nil
}

// integer is a lenient int64 (ids, millisecond timestamps and durations,
// byte counts). Long.MAX_VALUE survives exactly.
type integer struct {
	V  int64
	OK bool
}

func (n *integer) UnmarshalJSON(b []byte) error {
	*n = integer{}
	b = unquote(b)
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	if v, ok := parseDigits(b); ok {
		n.V, n.OK = v, true
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	switch {
	case f >= math.MaxInt64:
		n.V = math.MaxInt64
	case f <= math.MinInt64:
		n.V = math.MinInt64
	default:
		n.V = int64(f)
	}
	n.OK = true
	return nil
}

// parseDigits parses an optionally signed decimal integer without
// allocating (the common case on the hot path); false on anything else.
func parseDigits(b []byte) (int64, bool) {
	neg := false
	if len(b) > 0 && b[0] == '-' {
		neg, b = true, b[1:]
	}
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	if v > math.MaxInt64 {
		return 0, false
	}
	if neg {
		return -int64(v), true
	}
	return int64(v), true
}

func unquote(b []byte) []byte {
	b = bytes.TrimSpace(b)
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' {
		return bytes.TrimSpace(b[1 : len(b)-1])
	}
	return b
}

// or returns the value, or def when none arrived.
func (n integer) or(def int64) int64 {
	if n.OK {
		return n.V
	}
	return def
}

// millis converts a millisecond count to a Duration without overflowing:
// Flink reports "never" as Long.MAX_VALUE.
func millis(ms int64) (time.Duration, bool) {
	if ms < 0 || ms > math.MaxInt64/int64(time.Millisecond) {
		return 0, false
	}
	return time.Duration(ms) * time.Millisecond, true
}

// epochMillis is a Flink timestamp; zero, negative (-1 means "not yet") or
// absent is the zero time.
func epochMillis(n integer) time.Time {
	if !n.OK || n.V <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(n.V)
}

//go:build !linux

package exepages

func release() (int64, error) { return 0, nil }

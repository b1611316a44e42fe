//go:build nokennel

package store

func kennelEntry() Entry {
	return Entry{
		Name:    "kennel",
		Module:  "github.com/kennel-cache/kennel",
		Missing: "not built: this binary was built with -tags nokennel",
	}
}

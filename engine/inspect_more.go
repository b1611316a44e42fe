package engine

// CheckDir checks dir the way Open checks it before reading anything: that it
// exists, is a directory on a filesystem whose locks kennel trusts, and holds
// a format file of a version this kennel reads. It returns that version. It
// writes nothing, takes no lock and reads no segment, so a tool can vouch for
// a directory that another process is using and then read its files itself
// (fsinspect verify) without building an index, and without Open refusing a
// directory whose damage the tool is there to report.
//
// Errors are Open's: ErrNotKennelDir, ErrIncompatible, ErrNetworkFS, or a
// wrapped fs error such as fs.ErrNotExist.
func CheckDir(dir string) (int, error) {
	opts := Options{ReadOnly: true}.withDefaults()
	c := &Cache{dir: dir, opts: opts, fs: opts.fs}
	if err := c.openDir(); err != nil {
		return 0, err
	}
	return formatVersion, nil
}

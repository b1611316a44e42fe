package engine

// crashPoint, when set, is called at named points of the write paths where
// a crash leaves the directory in a state that recovery must handle. Only
// tests set it (export_test.go), to kill their own process there; in
// production it is nil, and a point costs a load and a compare.
var crashPoint func(name string)

// reached marks a crash point.
func reached(name string) {
	if crashPoint != nil {
		crashPoint(name)
	}
}

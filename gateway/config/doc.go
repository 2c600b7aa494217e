// Package config reads and checks an isthmus gateway's configuration.
//
// Each gateway has one TOML file (see docs/configuration.md for every key).
// [Load] reads it, fills defaults, rejects unknown keys, validates every
// value in one place ([Config.Validate]) and resolves file paths relative to
// the file's directory. Errors name the file, the line and the dotted key:
//
//	config: ship.toml:12: link.batch_window: "fast" is not a duration
//	config: ship.toml:14: unknown key "link.batch_windw" (did you mean "link.batch_window"?)
//
// All errors are *[Error] values; [ErrUnknownKey] marks an unknown key.
// Only the first error is reported: fix it and check again.
//
// The package does no I/O beyond reading the configuration file and, in Load,
// the key and certificate files it names.
package config

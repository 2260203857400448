// Package iplist loads the operator's IP reputation lists (a Tor exit
// list, a hosting provider's ranges, a FireHOL .netset) and answers which
// of them hold an address. Each file holds one IP address or CIDR prefix
// a line; blank lines and comments after '#' or ';' are ignored, which
// reads FireHOL's .netset and Spamhaus DROP files as published.
//
// Lists are reloaded when their file changes ([Lists.Refresh], polled by
// [Lists.Watch]); a file that no longer parses keeps the last good list.
// Lookups are lock-free reads of an immutable [netipx.IPSet], so a list of
// hundreds of thousands of prefixes costs a binary search a login.
//
// The package does I/O (reads files) and must not know the engine: it
// returns [risk.ListHit]s, the risk package's vocabulary.
package iplist

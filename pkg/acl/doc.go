// Package acl decides which channels a user may subscribe to and which
// producer may publish to which channel, from a registry of channels loaded
// from a channels file. It is pure: no I/O, no logging, no globals, and it
// imports no file-format library.
//
// # Subscribe rule
//
// The rule is part of the interface; the token service and the bridge rely on
// it:
//
//   - unknown and inactive channels: nobody;
//   - level public: everyone, anonymous users included;
//   - level users: any authenticated user;
//   - level groups: authenticated users in at least one of the channel's groups;
//   - level staff: authenticated staff users;
//   - level superuser: authenticated superusers.
//
// Superusers may subscribe to every active channel. A user is authenticated
// when it has an ID or a Username; the Staff, Superuser and Groups fields of
// an unauthenticated user are ignored. Unlike django-instant, group
// membership does not open channels of other levels, and [Registry.ChannelsFor]
// never returns a channel twice.
//
// # Publish rule
//
// [Registry.CheckPublish] accepts an envelope when every channel it names is
// registered and active and, for channels with a non-empty Publishers list,
// the producer is in that list (the empty producer never is).
//
// # Channels file
//
// The channels file, YAML (.yaml, .yml) or JSON (.json), lists the channels.
// This package does not read it (it does no I/O and knows no file format):
// a reader decodes its entries into [ChannelEntry] values, with the lines
// they were on, and [NewRegistryFromEntries] validates them and builds the
// registry; Instant's programs use internal/channelsfile. The format:
//
//	channels:
//	  - name: public
//	    level: public
//	  - name: $group1
//	    level: groups
//	    groups: [group1]
//	  - name: $billing
//	    level: staff
//	    active: false          # optional, default true
//	    publishers: [billing]  # optional, default: any producer
//
// level defaults to superuser when omitted, as in django-instant. Unknown
// keys, duplicate keys and duplicate names are errors, and so is a groups
// list on a channel whose level is not groups. The file must have a channels
// key; an empty list is a valid registry with no channels.
package acl

// Package dirsync feeds a tenant from its LDAP or Active Directory server:
// per-tenant sync profiles (connection, filters, attribute mapping, role
// mapping, policy for departed users), a paged read of users and groups with
// nested groups resolved, runs on demand or on a schedule, and logins of
// synced users by LDAP bind. It only translates the directory into a
// backend.DirectorySnapshot; the rules of what changes live in backend.
package dirsync

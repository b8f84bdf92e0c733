// Package gdpdu holds the DTD of the GDPdU Beschreibungsstandard, which a
// GoBD Z3 data carrier ships beside its index.xml.
package gdpdu

import _ "embed"

// DTDName is the file name index.xml refers to.
const DTDName = "gdpdu-01-09-2004.dtd"

// DTD is the DTD's text.
//
//go:embed gdpdu-01-09-2004.dtd
var DTD string

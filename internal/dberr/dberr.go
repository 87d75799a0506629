// Package dberr decides what the facade shows of a database's error: the
// error's code and the names it gives (constraints, columns, tables,
// types), never the values it quotes.
//
// PostgreSQL and MySQL quote the value they refuse in their messages,
// without escaping it (`invalid input syntax for type integer: "Zelda"`,
// `Duplicate entry 'MRN7730019' for key 'mrn'`), and PostgreSQL's detail,
// hint and context lines quote whole rows (`Key (mrn)=(MRN7730019)
// already exists`, `Failing row contains (…)`, `COPY t, line 3, column c:
// "…"`). Those values are patient data, and an error goes to logs, ledgers,
// reports and terminals. So where a database's error may quote a row's
// value (the backfill's failure reasons, the reference services' store
// errors), it is worded by Cut or PostgresMessage before anything keeps
// or prints it.
//
// A message a trigger or function raised (PL/pgSQL's RAISE, MySQL's
// SIGNAL) says whatever its author wrote, and Cut cannot tell a value in
// it from a word: it is dropped for the function's name or for saying
// it was signalled. So are the names a statement a function built at
// run time gives (EXECUTE): they may be made of the row's values.
package dberr

import (
	"regexp"
	"slices"
	"strings"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"

	"strangler/internal/human"
)

// Cut returns err without the values quoted by the PostgreSQL and MySQL
// errors in its chain: its text is err's with each such error's text
// replaced by the error's code and cut message (PostgresMessage,
// mysqlMessage), and it wraps err. Only the text is cut: a caller that
// takes a database error out of the chain with errors.As has the whole
// error, and words it with PostgresMessage. PostgreSQL's detail, hint
// and context are not in an error's text. Cut returns nil for nil, and
// err itself when it holds no database error.
func Cut(err error) error {
	var texts []string // pairs: the text as the database gave it, cut
	walk(err, func(e error) {
		switch e := e.(type) {
		case *pgconn.PgError:
			c := *e
			c.Message = PostgresMessage(e)
			texts = append(texts, e.Error(), c.Error())
		case *mysql.MySQLError:
			c := *e
			c.Message = mysqlMessage(e)
			texts = append(texts, e.Error(), c.Error())
		}
	})
	if len(texts) == 0 {
		return err
	}
	return &cut{err: err, text: strings.NewReplacer(texts...).Replace(err.Error())}
}

// cut is an error whose text has had the values cut out.
type cut struct {
	err  error
	text string
}

func (c *cut) Error() string { return c.text }
func (c *cut) Unwrap() error { return c.err }

// walk calls f for err and every error it wraps.
func walk(err error, f func(error)) {
	for err != nil {
		f(err)
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e, f)
			}
			return
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		default:
			return
		}
	}
}

// PostgresMessage is pg's message without the values it quotes. A data
// exception (SQLSTATE class 22) quotes the value refused, and so does a
// syntax error in a value of a type with a syntax of its own (42601:
// `syntax error in tsvector: "…"`, tsquery, jsonpath): such a message is
// cut from its first double quote to its last (a value may hold quotes:
// cut between one pair only, `"Zelda "Canary" 7"` left `Canary`), and
// the bytes it dumps (`invalid byte sequence for encoding "UTF8": 0xe9
// 0x20`) are dropped. `invalid input syntax for type date: "1901-02-33"`
// becomes `invalid input syntax for type date`, so reasons group too.
// Other messages name constraints, columns and tables, and are kept; an
// integrity violation's also gets the key's columns its detail names
// (keyColumns): `duplicate key value violates unique constraint "uq_7",
// key (ssn)`. Not one raised in a function (Where says where), whose
// detail says whatever its author wrote. A message PL/pgSQL's RAISE or
// ASSERT gave is its author's words, whatever code it was raised with,
// and as often as not quotes the row (`RAISE EXCEPTION 'bad ssn %',
// NEW.ssn`): it is replaced by the function's name (raised). The message
// is one line (oneLine). So is a message of an error in a statement a
// PL/pgSQL function built at run time (builtBy), whatever its code: the
// names it gives may be made of the row's values.
func PostgresMessage(pg *pgconn.PgError) string {
	return oneLine(postgresMessage(pg))
}

// postgresMessage is PostgresMessage before oneLine.
func postgresMessage(pg *pgconn.PgError) string {
	if pg.Routine == "exec_stmt_raise" || pg.Routine == "exec_stmt_assert" {
		return raised(pg.Where)
	}
	if fn, ok := builtBy(pg.Where); ok {
		return "a statement built at run time by " + fn + " failed"
	}
	if strings.HasPrefix(pg.Code, "23") {
		if cols := keyColumns(pg.Detail); cols != "" && pg.Where == "" {
			return pg.Message + ", key (" + cols + ")"
		}
		return pg.Message
	}
	if !strings.HasPrefix(pg.Code, "22") && pg.Code != "42601" {
		return pg.Message
	}
	msg := cutQuoted(pg.Message, `"`, `"`)
	return strings.TrimSpace(byteDump.ReplaceAllString(msg, ""))
}

// raised words a message a PL/pgSQL function raised (or asserted) by
// the function's name, which where's first line gives (`PL/pgSQL
// function check_ssn() line 3 at RAISE`); the lines after it may quote
// the statements that called it, literals and all, and are not looked
// at.
func raised(where string) string {
	first, _, _ := strings.Cut(where, "\n")
	if fn, _, ok := plpgsqlLine(first); ok {
		return "raised by " + fn
	}
	return "raised by a function"
}

// dynamic are the statements, as PL/pgSQL's context lines name them,
// that run a query built at run time: EXECUTE, FOR … IN EXECUTE, and
// RETURN QUERY and OPEN, which read alike whether their query was
// written in the function or built (… EXECUTE).
var dynamic = []string{"EXECUTE", "FOR over EXECUTE statement", "RETURN QUERY", "OPEN"}

// builtBy reports whether an error's context, where, says it came from
// a statement a PL/pgSQL function built at run time, and names that
// function ("function route_visit()"): such a statement's tables,
// columns and constraints are whatever it was built from, as often as
// not the row's values (`EXECUTE format('INSERT INTO %I …', 'visits_' ||
// NEW.mrn)` fails with `relation "visits_MRN7730019" does not exist`).
// A statement written in the function names what its author wrote, and
// is kept.
func builtBy(where string) (string, bool) {
	for _, line := range strings.Split(where, "\n") {
		if fn, stmt, ok := plpgsqlLine(line); ok && slices.Contains(dynamic, stmt) {
			return fn, true
		}
	}
	return "", false
}

// plpgsqlLine reads a context line of PL/pgSQL's, `PL/pgSQL function
// check_ssn() line 3 at RAISE`, for the function ("function
// check_ssn()") and the statement ("RAISE").
func plpgsqlLine(line string) (fn, stmt string, ok bool) {
	rest, ok := strings.CutPrefix(line, "PL/pgSQL function ")
	i := strings.LastIndex(rest, " line ")
	if !ok || i < 0 {
		return "", "", false
	}
	_, stmt, _ = strings.Cut(rest[i:], " at ")
	return "function " + rest[:i], stmt, true
}

// keyColumns is the key's columns (or index expressions) that an
// integrity violation's detail names before the values it quotes, ""
// when it names none: a unique or exclusion violation's and a foreign
// key's detail reads `Key (ssn)=(123-45-6789) already exists` (`is not
// present in table "patients"`, `conflicts with existing key …`, `is
// still referenced from table "visits"`). The columns end at the first
// ")" outside quotes and brackets (a name may be `"odd)=(name"`, an
// expression `coalesce(site, ')'::text)`); nothing after it is taken.
// A detail in another language (lc_messages) or without a key (a
// check's `Failing row contains (…)`) gives "".
func keyColumns(detail string) string {
	rest, ok := strings.CutPrefix(detail, "Key (")
	if !ok {
		return ""
	}
	var quote byte
	depth := 0
	for i := 0; i < len(rest); i++ {
		switch c := rest[i]; {
		case quote != 0:
			if c == quote {
				quote = 0 // a doubled quote closes and opens again
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case c == ')':
			if !strings.HasPrefix(rest[i:], ")=(") {
				return ""
			}
			return rest[:i]
		}
	}
	return ""
}

// byteDump is how PostgreSQL shows the bytes of a value it cannot read
// as text.
var byteDump = regexp.MustCompile(`:?\s*0x[0-9a-fA-F]{2}(\s+0x[0-9a-fA-F]{2})*`)

// mysqlValueErrors are the MySQL and MariaDB errors whose message quotes
// a value, each with the server's words before it (the English message,
// errmsg-utf8.txt's): ER_DUP_ENTRY, ER_DUP_ENTRY_WITH_KEY_NAME,
// ER_TRUNCATED_WRONG_VALUE, ER_TRUNCATED_WRONG_VALUE_FOR_FIELD,
// ER_ILLEGAL_VALUE_FOR_TYPE, ER_WRONG_VALUE_FOR_TYPE, ER_WRONG_VALUE,
// ER_INVALID_CHARACTER_STRING, ER_DATA_OUT_OF_RANGE (an expression,
// literals included, after a type: `BIGINT value is out of range in
// '…'`), ER_DUP_ENTRY_AUTOINCREMENT_CASE (an ALTER TABLE's duplicate),
// ER_NO_SUCH_KEY_VALUE (`Key value '…' was not found in table …`: cut to
// its end, table and all), MariaDB's ER_DATA_OVERFLOW, ER_DATA_TRUNCATED
// and ER_BAD_DATA (a dynamic column's value: `Encountered illegal value
// 'Zelda' when converting to INT`), the two that quote a record after
// the table they name, when an ON UPDATE CASCADE would make a duplicate
// (ER_FOREIGN_DUPLICATE_KEY_WITH_CHILD_INFO and _WITHOUT_CHILD_INFO:
// `Foreign key constraint for table 'patients', record 'MRN7730019-north'
// would lead to a duplicate entry in table 'visits', key 'mrn'`), and
// ER_NO_PARTITION_FOR_GIVEN_VALUE, which ends with a partitioning
// expression's value, unquoted (`Table has no partition for value 1961`,
// the year of a birth date). ER_TRUNCATED_WRONG_VALUE is worded two
// ways (MariaDB words it for a column as ER_TRUNCATED_WRONG_VALUE_FOR_FIELD
// does). The others quote names only (`Data too long for column 'x' at
// row 1`). ER_PARSE_ERROR and ER_SYNTAX_ERROR quote the query from where
// the parser stopped (`… to use near 'WHERE mrn = 'MRN7730019” at line
// 1`): a configured query's literals, or the values a DSN with
// interpolateParams put in it; the line is kept.
var mysqlValueErrors = map[uint16][]string{
	1062: {"Duplicate entry '"}, 1586: {"Duplicate entry '"},
	1292: {"Truncated incorrect ", "Incorrect "}, 1366: {"Incorrect "}, 1411: {"Incorrect "}, 1525: {"Incorrect "},
	1367: {"Illegal "}, 1300: {"Invalid "}, 1690: nil,
	1569: {"ALTER TABLE causes auto_increment resequencing, resulting in duplicate entry '"}, 1741: {"Key value '"},
	1916: {"Got overflow when converting '"}, 1917: {"Truncated value '"}, 1918: {"Encountered illegal value '"},
	1761: {"Foreign key constraint for table '"}, 1762: {"Foreign key constraint for table '"},
	1526: {"Table has no partition for value "},
	1064: {"You have an error in your SQL syntax"}, 1149: {"You have an error in your SQL syntax"},
}

// mysqlMessage is e's message without the value it quotes: from the
// first quote to the last one before ` for ` (the key, column or function
// it names: `Duplicate entry 'MRN7730019' for key 'mrn'` becomes
// `Duplicate entry for key 'mrn'`), or to the last quote; a record after
// the table, and a partition's value, are cut too. A SIGNAL's message is
// dropped whole (signalled), and so is a message of a value error not
// worded as the server words it (serverWords). The message is one line
// (oneLine).
func mysqlMessage(e *mysql.MySQLError) string {
	return oneLine(mysqlCut(e))
}

// mysqlCut is mysqlMessage before oneLine.
func mysqlCut(e *mysql.MySQLError) string {
	_, quotesValue := mysqlValueErrors[e.Number]
	switch {
	case signalled(e):
		return "signalled by a trigger or routine"
	case !quotesValue:
		return e.Message
	case !serverWords(e.Number, e.Message):
		return "message not kept: not the server's English words (a SIGNAL's, or lc_messages)"
	case e.Number == 1761 || e.Number == 1762:
		return cutQuoted(e.Message, ", record '", "' would ")
	case e.Number == 1064 || e.Number == 1149:
		return cutQuoted(e.Message, " near '", "' at line ")
	case e.Number == 1526:
		head, _, _ := strings.Cut(e.Message, " for value ")
		return head
	}
	return cutQuoted(e.Message, "'", "' for ")
}

// signalled reports whether e is a SIGNAL's, whose MESSAGE_TEXT is its
// author's words (`SET MESSAGE_TEXT = CONCAT('bad ssn ', NEW.Ssn)`),
// rather than the server's own error. A SIGNAL names its SQLSTATE and
// may set any MYSQL_ERRNO from 1 to 65535, so it is told by what the
// server never sends: ER_SIGNAL_NOT_FOUND (1643) and ER_SIGNAL_EXCEPTION
// (1644), the numbers a SIGNAL gets when it sets none; SQLSTATE 45000,
// which the SQL standard leaves to user-defined exceptions; and a number
// that is no server error of MySQL's or MariaDB's (theirs are below 2000
// or from 3000 to 5999; 2000 to 2999 are client errors, which the driver
// makes its own; from 6000 up only MySQL's third-party components have
// any, whose words are dropped too). A SIGNAL borrowing one of the
// server's numbers under another SQLSTATE is its error, which
// serverWords checks for the errors that quote a value.
func signalled(e *mysql.MySQLError) bool {
	n := e.Number
	return n == 1643 || n == 1644 || string(e.SQLState[:]) == "45000" || n >= 2000 && n < 3000 || n >= 6000
}

// serverWords reports whether msg, the message of value error n, is
// worded as the server words it, so that mysqlMessage's cut finds the
// value where the server puts it: its words up to the value, and a
// quote after them where the value is quoted. A SIGNAL under that
// number (MYSQL_ERRNO = 1062, MESSAGE_TEXT = CONCAT('ssn ', NEW.Ssn, '
// taken')) has other words, and so has a server whose lc_messages is
// not English.
func serverWords(n uint16, msg string) bool {
	if n == 1690 {
		// The type out of range comes first: `BIGINT UNSIGNED value is
		// out of range in '(…)'`.
		typ, _, ok := strings.Cut(msg, " value is out of range in '")
		return ok && typ != "" && strings.Trim(typ, "ABCDEFGHIJKLMNOPQRSTUVWXYZ ") == ""
	}
	for _, head := range mysqlValueErrors[n] {
		rest, ok := strings.CutPrefix(msg, head)
		switch {
		case !ok:
		case n == 1526:
			return true // the value follows, unquoted
		case n == 1761 || n == 1762:
			return strings.Contains(rest, ", record '")
		default:
			return strings.HasSuffix(head, "'") || strings.Contains(rest, "'")
		}
	}
	return false
}

// oneLine is msg with each control character (a line break in a quoted
// name, or in the query a syntax error quotes) shown as an escape, as a
// config error shows one: an error is one line on a terminal and in a log,
// where each line reads as an error of its own.
func oneLine(msg string) string {
	return human.Printable(msg, false)
}

// cutQuoted cuts msg from the first open (and the ": " before it) to the
// last end, or else to the last open, or else to its end. The last
// rather than the next: a value holds quotes unescaped.
func cutQuoted(msg, open, end string) string {
	i := strings.Index(msg, open)
	if i < 0 {
		return msg
	}
	head := strings.TrimSuffix(strings.TrimRight(msg[:i], " "), ":")
	j := strings.LastIndex(msg, end)
	if j < i {
		j = strings.LastIndex(msg, open)
	}
	if j <= i {
		return head
	}
	return head + msg[j+1:]
}

package main

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestTheStatusPageShowsTheDualWritesOwed: an operator about to retire a
// dual-write route sees, on the status page, what it still owes its
// secondary: here two writes modern refused for good (dead). Before, the
// page showed no repair at all while the admin API listed them.
func TestTheStatusPageShowsTheDualWritesOwed(t *testing.T) {
	needChromium(t)
	f := startDeadLetterFacade(t)
	repairIDs(t, f, 2)

	b := openBrowser(t)
	b.do("logging in",
		chromedp.Navigate("http://"+f.admin+"/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), aliceToken),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button`)),
		chromedp.WaitVisible(chromedp.ID("routes")),
	)
	text, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.querySelector("#owed-update-patient-modern")?.innerText ?? ""`))
	if err != nil {
		t.Fatal(err)
	}
	row := strings.Join(strings.Fields(text), " ")
	if want := "update-patient modern 0 0 2"; row != want {
		t.Errorf("the owed row says %q, want %q (route, owed to, waiting, unknown, dead)", row, want)
	}
	if errs := b.close(); len(errs) > 0 {
		t.Errorf("the browser's console has errors:\n%s", strings.Join(errs, "\n"))
	}
}

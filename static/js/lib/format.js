// Dates and times in the reader's own time zone and language.
//
// The server speaks UTC ISO 8601 ("2026-11-22T10:00:00.123Z"); the page shows
// local times through Intl, whose `undefined` locale is the browser's.

const timeOfDayFormat = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "short" });
const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: "long", month: "long", day: "numeric" });
const dayWithYearFormat = new Intl.DateTimeFormat(undefined, {
  weekday: "long", month: "long", day: "numeric", year: "numeric",
});
const shortDateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium" });

export function parseTime(iso) {
  return new Date(iso);
}

/** "14:05" or "2:05 PM", as the reader's locale writes it. */
export function timeOfDay(date) {
  return timeOfDayFormat.format(date);
}

/** "Sunday, 22 November 2026 at 10:00", for tooltips. */
export function fullDateTime(date) {
  return fullFormat.format(date);
}

export function shortDate(date) {
  return shortDateFormat.format(date);
}

/** A key that is equal for two times on the same local calendar day. */
export function dayKey(date) {
  return `${date.getFullYear()}-${date.getMonth() + 1}-${date.getDate()}`;
}

/** "Today", "Yesterday", "Monday, 3 March", or with the year when it is not this one. */
export function dayLabel(date, now = new Date()) {
  const key = dayKey(date);
  if (key === dayKey(now)) return "Today";
  const yesterday = new Date(now);
  yesterday.setDate(now.getDate() - 1);
  if (key === dayKey(yesterday)) return "Yesterday";
  return date.getFullYear() === now.getFullYear() ? dayFormat.format(date) : dayWithYearFormat.format(date);
}

/** "alice", "alice and bob", "alice, bob and 2 others". */
export function listOfNames(names) {
  if (names.length <= 1) return names.join("");
  if (names.length === 2) return `${names[0]} and ${names[1]}`;
  if (names.length === 3) return `${names[0]}, ${names[1]} and ${names[2]}`;
  return `${names[0]}, ${names[1]} and ${names.length - 2} others`;
}

/** A browser's visit to the payment page, by hand: the page's form, its cookie, and where each answer sends it. */
export async function visit(url: string, cookie = '') {
  const res = await fetch(url, { headers: { cookie }, redirect: 'manual' });
  const html = await res.text();
  const hidden = (name: string) => new RegExp(`name="${name}" value="([^"]+)"`).exec(html)?.[1];
  return {
    res,
    html,
    cookie: cookie || (res.headers.get('set-cookie') ?? '').split(';')[0],
    csrf: hidden('csrf'),
    form: hidden('form'),
    amount: hidden('amount'),
  };
}

/** A form posted as a browser posts it, its redirect not followed. */
export function post(url: string, fields: Record<string, string>, cookie = '') {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
    body: new URLSearchParams(fields).toString(),
    redirect: 'manual',
  });
}

/** Our page's form, choosing a new instrument for `option` (`APP:METHOD`): where it sends the customer. */
export async function chooseNewInstrument(linkUrl: string, option: string, { save = false } = {}): Promise<Response> {
  const page = await visit(linkUrl);
  const fields: Record<string, string> = {
    option,
    [`instrument:${option}`]: 'new',
    csrf: page.csrf!,
    form: page.form!,
    amount: page.amount!,
  };
  if (save) fields[`save:${option}`] = 'yes';
  return post(linkUrl, fields, page.cookie);
}

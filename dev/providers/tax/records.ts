// The simulated tax bureau's records (税收征管): taxes paid per taxpayer and calendar year,
// for the synthetic enterprises (by unified social credit code) and persons (by id number).
// Nothing is stored; everything follows from the other models, so the departments agree:
//
// - individuals: individual income tax (个人所得税) withheld on the wages of the employment
//   model (employment.ts) — the jobs the social insurance agency sees contributions for.
//   2016 – Sept 2018: monthly, 3 500 元 allowance, seven brackets 3–45%; Oct – Dec 2018:
//   5 000 元 and the new brackets; from 2019: annual (cumulative withholding and annual
//   reconciliation), 60 000 元 allowance, the employee's social insurance (10.5% of the wage,
//   the base capped at three times the average wage) and special additional deductions
//   (专项附加扣除: children, housing, parents — 0 to 36 000 元 a year, fixed per person).
//   Pensions are exempt, so retirees and people without wages on record pay nothing;
//   low earners pay nothing either (most workers since 2019, as in the statistics);
// - enterprises: all taxes (增值税, 企业所得税 …) in the years the company existed, scaled by
//   its employees and a per-company, per-year factor; micro companies often pay nothing
//   (small-scale VAT exemption, 小微企业 relief), larger ones nearly always pay.
//
// The bureau keeps electronic records for 2016 – 2025 (金税三期 in every province since
// 2016; REFERENCE_DATE 2026-01-01): for any other year it has no record of tax paid.
import { enterprise, type Enterprise, type EnterpriseSize } from '../enterprises.js'
import { careerOf, averageWage, wageIn, type Career } from '../employment.js'
import { person, personRng } from '../population.js'
import { gaussian } from '../reference.js'

export const FIRST_TAX_YEAR = 2016
export const LAST_TAX_YEAR = 2025

/** 完税金额区间 (元, lower bound inclusive): the conditional summary item. */
export type AmountBand = '0' | '<1万' | '1-10万' | '10-100万' | '100-1000万' | '≥1000万'

export const AMOUNT_BANDS: AmountBand[] = ['0', '<1万', '1-10万', '10-100万', '100-1000万', '≥1000万']

export const amountBand = (amount: number): AmountBand =>
  amount <= 0 ? '0' : amount < 10_000 ? '<1万' : amount < 100_000 ? '1-10万' : amount < 1_000_000 ? '10-100万' : amount < 10_000_000 ? '100-1000万' : '≥1000万'

export interface TaxYear {
  taxPaid: boolean
  amountBand: AmountBand
  /** Total tax paid in the year, 元 with two decimals. */
  amount: number
}

const NOTHING: TaxYear = Object.freeze({ taxPaid: false, amountBand: '0', amount: 0 }) as TaxYear

const toCents = (yuan: number): number => Math.round(yuan * 100)
const summary = (cents: number): TaxYear =>
  cents > 0 ? { taxPaid: true, amountBand: amountBand(cents / 100), amount: cents / 100 } : { ...NOTHING }

// [upper bound of the bracket, rate, quick deduction]
export type Brackets = Array<[number, number, number]>
export const MONTHLY_2011: Brackets = [[1500, 0.03, 0], [4500, 0.1, 105], [9000, 0.2, 555], [35_000, 0.25, 1005], [55_000, 0.3, 2755], [80_000, 0.35, 5505], [Infinity, 0.45, 13_505]]
export const MONTHLY_2018: Brackets = [[3000, 0.03, 0], [12_000, 0.1, 210], [25_000, 0.2, 1410], [35_000, 0.25, 2660], [55_000, 0.3, 4410], [80_000, 0.35, 7160], [Infinity, 0.45, 15_160]]
export const ANNUAL_2019: Brackets = [[36_000, 0.03, 0], [144_000, 0.1, 2520], [300_000, 0.2, 16_920], [420_000, 0.25, 31_920], [660_000, 0.3, 52_920], [960_000, 0.35, 85_920], [Infinity, 0.45, 181_920]]

/** Tax on a taxable amount under a bracket table (rate × amount − quick deduction). */
export const taxOn = (taxable: number, brackets: Brackets): number => {
  if (taxable <= 0) return 0
  const [, rate, quick] = brackets.find(([upTo]) => taxable <= upTo)!
  return taxable * rate - quick
}

/** Employee social insurance: 8% pension, 2% medical, 0.5% unemployment of the capped base. */
const socialInsurance = (wage: number, year: number): number => Math.min(wage, 3 * averageWage(year)) * 0.105

// 专项附加扣除 per year, fixed per person (from 2019).
const SPECIAL_DEDUCTIONS = [0, 0, 12_000, 24_000, 36_000]

/** Individual income tax withheld from the wages of this career in `year`, in cents. */
export const incomeTaxCents = (index: number, career: Career, year: number): number => {
  const months = Array.from({ length: 12 }, (_, m) => wageIn(career, year * 12 + m))
  if (year <= 2018) {
    let cents = 0
    months.forEach((wage, m) => {
      if (wage === 0) return
      const newRules = year === 2018 && m >= 9
      const taxable = wage - socialInsurance(wage, year) - (newRules ? 5000 : 3500)
      cents += toCents(taxOn(taxable, newRules ? MONTHLY_2018 : MONTHLY_2011))
    })
    return cents
  }
  const income = months.reduce((s, w) => s + w, 0)
  if (income === 0) return 0
  const insurance = months.reduce((s, w) => s + socialInsurance(w, year), 0)
  const special = SPECIAL_DEDUCTIONS[Math.floor(personRng(index, 'tax-deductions')() * SPECIAL_DEDUCTIONS.length)]
  return toCents(taxOn(income - 60_000 - insurance - special, ANNUAL_2019))
}

/** What the bureau has on record for person `index` in `year`. */
export const personTaxYear = (index: number, year: number): TaxYear => {
  person(index) // range check
  if (!Number.isInteger(year) || year < FIRST_TAX_YEAR || year > LAST_TAX_YEAR) return { ...NOTHING }
  return summary(incomeTaxCents(index, careerOf(index), year))
}

// Share of company-years with tax paid, and the median tax per employee (元, 2016 level).
const PAYS: Record<EnterpriseSize, number> = { micro: 0.7, small: 0.93, medium: 0.99, large: 1 }
const PER_EMPLOYEE: Record<EnterpriseSize, number> = { micro: 9000, small: 16_000, medium: 24_000, large: 30_000 }

const DAY_MS = 86_400_000

/** Fraction of `year` the company existed (founded, not yet deregistered). */
const activeShare = (e: Enterprise, year: number): number => {
  const from = Math.max(Date.parse(e.establishedOn), Date.UTC(year, 0, 1))
  const to = Math.min(e.dissolvedOn ? Date.parse(e.dissolvedOn) : Infinity, Date.UTC(year + 1, 0, 1))
  return to > from ? (to - from) / (Date.UTC(year + 1, 0, 1) - Date.UTC(year, 0, 1)) : 0
}

/** What the bureau has on record for enterprise `index` in `year`. */
export const enterpriseTaxYear = (index: number, year: number): TaxYear => {
  const e = enterprise(index)
  if (!Number.isInteger(year) || year < FIRST_TAX_YEAR || year > LAST_TAX_YEAR) return { ...NOTHING }
  const share = activeShare(e, year)
  if (share === 0) return { ...NOTHING }
  const rnd = personRng(index, `enterprise-tax:${year}`)
  // Micro companies pay less often since the 2019 relief for small taxpayers.
  const pays = e.size === 'micro' && year >= 2019 ? PAYS.micro - 0.1 : PAYS[e.size]
  if (rnd() >= pays) return { ...NOTHING }
  // A lasting company factor (its margins) and a yearly one (its year).
  const company = Math.exp(0.6 * gaussian(personRng(index, 'enterprise-tax')))
  const thisYear = Math.exp(0.25 * gaussian(rnd))
  const growth = 1 + 0.04 * (year - FIRST_TAX_YEAR)
  const yuan = PER_EMPLOYEE[e.size] * e.employees * company * thisYear * growth * share
  return summary(Math.max(1, toCents(yuan)))
}
